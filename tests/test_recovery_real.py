"""Results are never lost or paid for twice, a failure says why, a command that waited says when a run
failed: one real project on the local backend, through the real console scripts.

It trains once for the module: a pack of two runs on the demo competition where resnet18
finishes and vit_tiny fails (its patch embedding needs 224 px, it gets 32), and a run on a second
competition whose training images are cut short after the push checked them, as a file truncated on
disk would be. Then: deleted outputs, a deleted, emptied or damaged registry, commands without
--competition, retry, kstop, and the estimate before a long local run. Each test works on its own copy of that
project (a project is its folder), so none depends on another's changes or order.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

BIN = Path(sys.executable).parent
TINY = ["--item", "Resize(32)", "--batch", "aug_transforms(size=32, min_scale=0.75, do_flip=False)", "--epochs", "1",
        "--bs", "32", "--scratch"]
PACK = ["kpush", "train", "--arch", "resnet18", "--arch", "vit_tiny_patch16_224", *TINY, "--pack", "2"]
BROKEN = ["kpush", "train", "-c", "broken-digits", "--arch", "resnet18", *TINY]
VIT_ROW = """[[run]]
arch = "vit_tiny_patch16_224"
item = "Resize(32)"
batch = "aug_transforms(size=32, min_scale=0.75, do_flip=False)"
epochs = 1
bs = 32
pretrained = false
"""
TRUNCATED = "OSError: image file is truncated"

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def cli(trained, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=trained.project, env=trained.env,
                          capture_output=True, text=True, timeout=600)


def truncated_jpeg() -> bytes:
    import numpy as np
    from PIL import Image

    pixels = (np.random.RandomState(0).rand(64, 64, 3) * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    data = buffer.getvalue()
    return data[: int(len(data) * 0.7)]  # headers whole, pixels cut short: opens, then fails to load


def rendered(result: subprocess.CompletedProcess) -> list[str]:
    return re.findall(r"^rendered kernels/(\S+)$", result.stdout, re.M)


def versions(project: Path) -> list[str]:
    return sorted(str(p.relative_to(project)) for p in project.glob(".toolkit/local/kernels/*/v*"))


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    from toolkit.competitions.demo import build_competition

    project = tmp_path_factory.mktemp("recovery")
    build_competition(project / "competitions", limit=120)
    broken = build_competition(project / "competitions", name="broken-digits", limit=60)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOOLKIT_", "KAGGLE_"))}
    env.update(TOOLKIT_PROJECT=str(project), TOOLKIT_POLL_INITIAL_S="0.5", TOOLKIT_POLL_MAX_S="1", COLUMNS="250")
    trained = SimpleNamespace(project=project, env=env)
    trained.pushed = cli(trained, *PACK)
    assert trained.pushed.returncode == 0, trained.pushed.stderr
    second = cli(trained, *BROKEN)
    assert second.returncode == 0, second.stderr
    # The push checked every image; the kernel reads them later (it queues behind the pack).
    originals = {p: p.read_bytes() for p in (broken / "train_images").rglob("*.png")}
    for path in originals:
        path.write_bytes(truncated_jpeg())
    trained.pulled = cli(trained, "kpull", "outputs", "--format", "json")
    for path, data in originals.items():
        path.write_bytes(data)
    trained.resnet, trained.vit = rendered(trained.pushed)
    (trained.broken,) = rendered(second)
    return trained


@pytest.fixture
def trained(trained_once, tmp_path):
    """This test's own copy of the trained project."""
    import shutil

    project = tmp_path / "project"
    shutil.copytree(trained_once.project, project, symlinks=True)
    return SimpleNamespace(**{**vars(trained_once), "project": project,
                              "env": {**trained_once.env, "TOOLKIT_PROJECT": str(project)}})


def test_pack_keeps_its_finished_run_when_the_other_fails(trained):
    assert trained.pulled.returncode == 3, trained.pulled.stderr
    rows = {r["slug"]: r for r in json.loads(trained.pulled.stdout)}
    assert rows[trained.resnet]["status"] == "COMPLETE" and rows[trained.resnet]["tta_error"] is not None
    assert rows[trained.vit]["status"] == "ERROR"
    outputs = trained.project / "outputs"
    assert (outputs / trained.resnet / "v1" / "tta.pkl").is_file() and not (outputs / trained.vit).exists()
    status = cli(trained, "kstatus", "--no-refresh").stdout
    assert "AssertionError: Input height (32) doesn't match model (224)." in status
    again = cli(trained, "kpush", "retry", trained.resnet)  # the finished run is not trained again
    assert again.returncode == 2 and f"no failed run matches '{trained.resnet}'" in again.stderr


def test_a_failure_shows_its_cause_and_waiting_commands_exit_3(trained):
    lines = trained.pulled.stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{trained.broken} failed:"))
    assert re.fullmatch(rf"{trained.broken} failed: In \[\d+\]: {TRUNCATED} \(\d+ bytes not processed\)", lines[start])
    tail = []
    for line in lines[start + 1:]:
        if " failed: " in line or line.startswith(("learning curves", "report:", "error:")):
            break
        tail.append(line)
    assert tail and tail[-1].strip().endswith(lines[start].split("failed: ", 1)[1])  # the log ends at the cause
    assert lines[-1].startswith("error: 2 of 3 runs failed:") and len(lines[-1].splitlines()) == 1
    status = cli(trained, "kstatus", "--no-refresh").stdout
    row = [line for line in status.splitlines() if trained.broken in line]
    assert len(row) == 1 and TRUNCATED in row[0] and "Caught" not in status and "Traceback" not in status

    waited = cli(trained, *PACK, "--wait")
    assert waited.returncode == 3 and waited.stdout.count("skipped") == 2, waited.stderr
    assert waited.stderr.strip().splitlines()[-1].startswith(f"error: 1 of 2 runs failed: {trained.vit}")
    (trained.project / "vit.toml").write_text(VIT_ROW)
    swept = cli(trained, "kpush", "sweep", "vit.toml", "--wait")
    assert swept.returncode == 3 and "skipped" in swept.stdout, swept.stderr
    watched = cli(trained, "kstatus", "--watch")
    assert watched.returncode == 3 and "runs failed" in watched.stderr


def test_without_competition_commands_use_the_recorded_ones(trained):
    pulled = cli(trained, "kpull", "outputs", "--no-wait")
    assert pulled.returncode == 3
    assert "digits-demo: results" in pulled.stdout and "broken-digits: results" in pulled.stdout
    assert (trained.project / "outputs" / "results-digits-demo.png").is_file()
    assert not (trained.project / "outputs" / "results.png").exists()
    submitted = cli(trained, "ksubmit", "ensemble")
    assert submitted.returncode == 2
    (line,) = submitted.stderr.strip().splitlines()
    assert "runs of 2 competitions are recorded: digits-demo, broken-digits" in line and "--competition" in line


def test_deleted_outputs_are_fetched_again(trained):
    import shutil

    outputs = trained.project / "outputs"
    shutil.rmtree(outputs)
    pulled = cli(trained, "kpull", "outputs", "-c", "digits-demo", "--format", "json")
    assert pulled.returncode == 3  # (vit still failed)
    rows = {r["slug"]: r for r in json.loads(pulled.stdout)}
    assert rows[trained.resnet]["tta_error"] is not None
    assert (outputs / trained.resnet / "v1" / "tta.pkl").is_file()

    shutil.rmtree(outputs)
    submitted = cli(trained, "ksubmit", "ensemble", "-c", "digits-demo", "--top", "5")
    assert submitted.returncode == 0, submitted.stderr
    assert "--top 5: only 1 finished run of digits-demo to choose from; using it" in submitted.stderr
    assert "ensemble score:" in submitted.stdout
    assert (outputs / trained.resnet / "v1" / "tta.pkl").is_file()


def test_a_lost_registry_is_rebuilt_from_the_backend(trained):
    store = trained.project / ".toolkit" / "runs.sqlite"
    before = versions(trained.project)
    store.unlink()  # as a user would: the file, not its write-ahead log
    pushed = cli(trained, *PACK)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.count("already pushed as version 1") == 2
    assert "had no runs: rebuilt 3 runs from the local backend" in pushed.stderr
    assert versions(trained.project) == before  # nothing trained twice
    status = cli(trained, "kstatus", "--no-refresh")
    assert status.stderr == ""
    for slug, state in ((trained.resnet, "COMPLETE"), (trained.vit, "ERROR"), (trained.broken, "ERROR")):
        assert re.search(rf"{slug}\s.*\b{state}\b", status.stdout), status.stdout

    store.write_bytes(b"")  # emptied
    pulled = cli(trained, "kpull", "outputs", "-c", "digits-demo", "--no-wait", "--format", "json")
    rows = {r["slug"]: r for r in json.loads(pulled.stdout)}
    assert rows[trained.resnet]["tta_error"] is not None and "rebuilt 3 runs" in pulled.stderr

    store.write_bytes(b"\x00garbage" * 512)  # damaged
    status = cli(trained, "kstatus")  # (with --no-refresh it would only say how to rebuild: it asks no backend)
    assert status.returncode == 0
    (line,) = status.stderr.strip().splitlines()
    assert "could not be read" in line and "rebuilt 3 runs" in line and "delete that" in line
    assert list(store.parent.glob("runs.sqlite.damaged-*")) and trained.resnet in status.stdout
    assert versions(trained.project) == before


def test_retry_says_what_it_retries_first(trained):
    retried = cli(trained, "kpush", "retry")
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.splitlines()[0].startswith("no runs named: retrying every failed run (2)")
    stopped = cli(trained, "kstop", trained.broken)  # (queued behind the vit run, or just started)
    assert stopped.returncode == 0 and "stopped by the user" in stopped.stdout, stopped.stderr
    watched = cli(trained, "kstatus", "--watch")  # the vit run fails again, alone
    assert watched.returncode == 3 and watched.stderr.startswith("error: 1 of ")
    assert f"runs failed: {trained.vit} (" in watched.stderr  # the stopped run is not a failure


def running(project: Path, slug: str, timeout: float = 120) -> Path:
    """The run folder once its kernel is up (its notebook kernel's pid recorded)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run_dir in project.glob(f".toolkit/local/kernels/{slug}/v*"):
            state = json.loads((run_dir / "state.json").read_text())
            if state.get("status") == "RUNNING" and (run_dir / "kernel.pid").is_file():
                return run_dir
        time.sleep(0.2)
    raise AssertionError(f"{slug} did not start")


def test_a_local_run_is_estimated_before_it_starts_and_kstop_stops_it(trained):
    from toolkit.core.procs import pid_alive

    # The finished resnet18's timings apply (same arch, transforms, bs); 40 epochs keep it running a while.
    known = cli(trained, "kpush", "train", "--arch", "resnet18", *TINY, "--epochs", "40")
    assert known.returncode == 0, known.stderr
    assert "on this machine, likely within 20% (from finished runs of the same arch, transforms and batch size)" in known.stdout
    long = cli(trained, "kpush", "train", "--arch", "resnet18", "--item", "Resize(224)", "--batch",
               "aug_transforms(size=224, do_flip=False)", "--epochs", "1000", "--bs", "32", "--scratch")
    assert long.returncode == 0, long.stderr
    assert re.search(r"about [\d.]+ (minutes|hours) on this machine, likely within 2x \(measured: resnet18 at "
                     r"224x224 px", long.stdout)
    assert "--backend kaggle" in long.stderr and "kstop" in long.stderr

    (slug,) = rendered(known)
    run_dir = running(trained.project, slug)
    stopped = cli(trained, "kstop", "resnet18")  # the running one and the queued one
    assert stopped.returncode == 0 and stopped.stdout.count("stopped by the user") == 2, stopped.stdout
    state = json.loads((run_dir / "state.json").read_text())
    assert (state["status"], state["failure_message"]) == ("CANCEL_ACKNOWLEDGED", "stopped by the user")
    assert not pid_alive(state["pid"]) and not pid_alive(int((run_dir / "kernel.pid").read_text()))
