"""Real console scripts, one real tiny kernel: killed at chosen points, rerun, and run two at a time.

1. kpush is SIGKILLed right after the local backend accepted the push, before the store recorded it;
2. two kpush of the same spec run at once: the run is reconciled, never pushed a second time;
3. kpull outputs is interrupted (SIGINT) and killed (SIGKILL) while it waits;
4. two kpull outputs run at once to the end: no "database is locked", one complete output folder;
5. ksubmit ensemble; then no credential (set to distinctive fake values) appears in any file or output.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
TINY = ["train", "--arch", "resnet18", "--item", "Resize(16)", "--batch", "aug_transforms(size=16, do_flip=False)",
        "--epochs", "1", "--bs", "16", "--scratch"]
FAKE = {"KAGGLE_USERNAME": "fakeuser-zq81x", "KAGGLE_KEY": "fakekey-0f9e8d7c6b5a4f3e",
        "KAGGLE_API_TOKEN": "fake-token-a1b2c3d4e5f6"}
# Dies (SIGKILL) the moment the store is about to record a push the backend already accepted.
KILL_AFTER_PUSH = """
import os, signal, sys
from toolkit.registry import store
def record_push(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
store.Store.record_push = record_push
from toolkit.cli.main import kpush
sys.argv = ["kpush", *sys.argv[1:]]
kpush()
"""


def start(args: list[str], env: dict, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def rows(project: Path) -> list[tuple]:
    db = sqlite3.connect(project / ".toolkit" / "runs.sqlite")
    try:
        return db.execute("SELECT slug, kind, status, version, COALESCE(owner, '') FROM runs"
                          " LEFT JOIN claims ON run_id = runs.id ORDER BY runs.id").fetchall()
    finally:
        db.close()


@pytest.mark.e2e
@pytest.mark.slow
def test_killed_and_concurrent_commands_leave_one_consistent_result(tmp_path):
    from toolkit.competitions.demo import build_competition

    project = tmp_path / "project"
    build_competition(project / "competitions", limit=120)
    env = {**os.environ, **FAKE, "TOOLKIT_PROJECT": str(project), "TOOLKIT_POLL_INITIAL_S": "0.2",
           "TOOLKIT_POLL_MAX_S": "0.5", "COLUMNS": "200"}
    env.pop("TOOLKIT_DEBUG", None)
    seen: list[str] = []

    # 1. Killed between the backend's acceptance and the store's record of it.
    code, out, err = finish(start([sys.executable, "-c", KILL_AFTER_PUSH, *TINY], env, project))
    seen += [out, err]
    assert code == -signal.SIGKILL
    [(slug, _, status, version, owner)] = rows(project)
    assert (status, version) == ("NEW", None) and owner  # the intent to push is on record
    versions = project / ".toolkit" / "local" / "kernels" / slug
    assert [p.name for p in versions.iterdir()] == ["v1"]

    # 2. Two reruns at once: both succeed, the run is reconciled to v1, nothing is pushed again.
    both = [start([str(BIN / "kpush"), *TINY], env, project) for _ in range(2)]
    for process in both:
        code, out, err = finish(process)
        seen += [out, err]
        assert code == 0, err
        assert "locked" not in err
    [(_, _, status, version, owner)] = rows(project)
    assert status in ("QUEUED", "RUNNING", "COMPLETE") and version == 1 and owner == ""
    assert [p.name for p in versions.iterdir()] == ["v1"]

    # 3. kpull interrupted while it waits (Ctrl-C), then killed outright.
    pull = [str(BIN / "kpull"), "outputs", "--format", "json"]
    process = start(pull, env, project)
    time.sleep(2.0)
    process.send_signal(signal.SIGINT)
    code, out, err = finish(process)
    seen += [out, err]
    if code != 0:  # (a very fast kernel may have finished first: then it simply succeeded)
        assert code == 130 and "interrupted" in err and "Traceback" not in err, err
    process = start(pull, env, project)
    time.sleep(2.0)
    process.kill()
    finish(process)

    # 4. Two kpulls at once, to the end.
    both = [start(pull, env, project) for _ in range(2)]
    for process in both:
        code, out, err = finish(process)
        seen += [out, err]
        assert code == 0, err
        assert "locked" not in err and '"COMPLETE"' in out
    [(_, _, status, version, owner)] = rows(project)
    assert (status, version) == ("COMPLETE", 1)
    outputs = project / "outputs" / slug
    assert [p.name for p in outputs.iterdir()] == ["v1"]  # no staging folders left, visible or hidden
    assert sorted(p.name for p in (outputs / "v1").iterdir()) == ["log.txt", "metrics.json", "tta.pkl"]
    assert [p.name for p in versions.iterdir()] == ["v1"]

    # 5. The ensemble and its submission, then a search for the credentials everywhere.
    code, out, err = finish(start([str(BIN / "ksubmit"), "ensemble"], env, project))
    seen += [out, err]
    assert code == 0, err
    code, out, err = finish(start([str(BIN / "kstatus")], env, project))
    seen += [out, err]
    assert code == 0 and "COMPLETE" in out
    db = sqlite3.connect(project / ".toolkit" / "runs.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    leaks = []
    for path in project.rglob("*"):
        if path.is_file() and not path.is_symlink() and "competitions" not in path.parts:
            data = path.read_bytes()
            leaks += [f"{path}: {name}" for name, value in FAKE.items() if value.encode() in data]
    leaks += [f"output: {name}" for text in seen for name, value in FAKE.items() if value in text]
    assert not leaks
