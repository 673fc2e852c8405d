"""Nothing lost, nothing leaked: claims and push idempotence, staged downloads, unsafe outputs (fast tests,
no real kernels; see test_robustness_real.py for killed and concurrent console scripts)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from toolkit.backends.base import KernelState, PushResult
from toolkit.backends.local.backend import LocalBackend
from toolkit.backends.local.sandbox import copy_outputs, safe_child
from toolkit.core.config import load_config
from toolkit.core.errors import SlotsFull, StoreError, UnsafeOutput
from toolkit.core.status import Status
from toolkit.kernel.runtime.ensemble import load_tta
from toolkit.project import Project
from toolkit.registry.store import Store, owner_id
from toolkit.runs.outputs import fetch as collect
from toolkit.runs.schedule import push_run

SPEC = {"arch": "resnet18", "competition": "digits-demo"}


class FakeBackend:
    """Counts pushes; can die (KeyboardInterrupt) right after a push reached it."""

    name, username, queues = "local", "me", True

    def __init__(self):
        self.pushes: list[tuple[str, float]] = []
        self.interrupt_after_push = False
        self.slots_full = False
        self.lock = threading.Lock()

    def push(self, folder: Path, session_timeout_s: int | None = None) -> PushResult:
        if self.slots_full:
            raise SlotsFull("Maximum batch GPU session count reached")
        with self.lock:
            time.sleep(0.05)  # a slow network call: gives a racing command its chance
            self.pushes.append((folder.name, time.time()))
            version = len(self.pushes)
        if self.interrupt_after_push:
            raise KeyboardInterrupt
        return PushResult(version, f"https://example/{folder.name}/{version}")

    def find_pushed(self, slug: str, after: int | None) -> PushResult | None:
        found = [i + 1 for i, (s, _) in enumerate(self.pushes) if s == slug and i + 1 > (after or 0)]
        return PushResult(found[-1], f"https://example/{slug}/{found[-1]}") if found else None

    def status(self, slug, version):
        return KernelState(Status.RUNNING)


@pytest.fixture
def project(tmp_path):
    project = Project(load_config(tmp_path), backend=FakeBackend())
    folder = project.config.kernels_dir / "resnet18-abcdef12"
    folder.mkdir(parents=True)
    (folder / "kernel-metadata.json").write_text("{}")
    return project


def add(project: Project):
    return project.store.add_run("resnet18-abcdef12", "train", "local", "digits-demo", "abcdef12", SPEC)


# -- claims and push idempotence ------------------------------------------------------------------

def test_a_push_cut_off_after_reaching_the_backend_is_not_pushed_again(project):
    run = add(project)
    project.backend.interrupt_after_push = True
    with pytest.raises(KeyboardInterrupt):
        push_run(project, run)
    left = project.store.get(run.id)
    assert left.status is Status.NEW and left.claim_owner == owner_id()  # the intent stays recorded
    project.backend.interrupt_after_push = False
    pushed = push_run(project, project.store.get(run.id))  # the rerun reconciles instead of pushing
    assert len(project.backend.pushes) == 1
    assert (pushed.status, pushed.version, pushed.claim_owner) == (Status.QUEUED, 1, "")


def test_a_claim_left_by_a_dead_process_is_taken_over(project):
    run = add(project)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = f"{owner_id().rsplit(':', 1)[0]}:{dead.stdout.strip()}"
    first = project.store.claim(run.id, owner)
    assert first is not None and first.previous_at is None
    claim = project.store.claim(run.id)  # that pid is gone: the claim is stale at once
    assert claim is not None and claim.previous_at == first.claimed_at
    pushed = push_run(project, project.store.get(run.id))  # nothing reached the backend: push now
    assert pushed.version == 1 and len(project.backend.pushes) == 1


def test_a_live_claim_is_respected_until_it_goes_stale(project):
    run = add(project)
    live = f"{owner_id().rsplit(':', 1)[0]}:1"  # pid 1 is alive
    assert project.store.claim(run.id, live) is not None
    assert project.store.claim(run.id) is None
    assert push_run(project, run).status is Status.NEW and not project.backend.pushes
    assert project.store.claim(run.id, stale_s=0) is not None  # past the stale timeout


def test_no_slot_releases_the_claim(project):
    run = add(project)
    project.backend.slots_full = True
    assert push_run(project, run) is None
    assert project.store.get(run.id).claim_owner == ""


def test_claims_only_for_new_runs(project):
    run = add(project)
    push_run(project, run)
    assert project.store.claim(run.id) is None


def test_racing_pushes_of_one_run_push_once(project):
    run = add(project)
    results, errors = [], []

    def push() -> None:
        try:
            # Different owners, as two commands would be (threads share a pid).
            store = Store(project.config.store_path)
            claim = store.claim(run.id, owner=f"{owner_id()}-{threading.get_ident()}")
            if claim:
                result = project.backend.push(project.config.kernels_dir / run.slug)
                results.append(store.set_status(run.id, Status.QUEUED, version=result.version))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=push) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and len(project.backend.pushes) == 1 and len(results) == 1


def test_racing_adds_of_one_slug_make_one_run(tmp_path):
    path = tmp_path / "runs.sqlite"
    Store(path)
    ids, errors = [], []

    def record() -> None:
        try:
            ids.append(Store(path).add_run("resnet18-abcdef12", "train", "local", "d", "abcdef12", SPEC).id)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=record) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and set(ids) == {1}


def test_a_late_reading_never_undoes_a_finish(project):
    run = add(project)
    project.store.set_status(run.id, Status.RUNNING, version=1)
    project.store.observe(run.id, Status.COMPLETE)
    assert project.store.observe(run.id, Status.RUNNING).status is Status.COMPLETE
    with pytest.raises(StoreError):
        project.store.set_status(run.id, Status.RUNNING)  # set_status itself stays strict


def test_requeue_refuses_an_active_run_and_repeats_harmlessly(project):
    run = add(project)
    assert project.store.requeue(run.id).status is Status.NEW
    project.store.set_status(run.id, Status.RUNNING, version=1)
    with pytest.raises(StoreError):
        project.store.requeue(run.id)


# -- the local backend: half pushes and reconciling --------------------------------------------------

def _kernel_folder(root: Path, slug: str) -> Path:
    import nbformat

    folder = root / slug
    folder.mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hi')")])
    nbformat.write(nb, folder / f"{slug}.ipynb")
    (folder / "kernel-metadata.json").write_text(json.dumps({"id": f"local/{slug}", "code_file": f"{slug}.ipynb"}))
    return folder


def test_local_backend_finds_a_push_and_drops_half_pushes(tmp_path):
    config = load_config(tmp_path)
    backend = LocalBackend(config)
    backend.dispatch = lambda: None  # record versions only; start nothing
    folder = _kernel_folder(tmp_path / "kernels", "hello-abcdef12")
    assert backend.find_pushed("hello-abcdef12", None) is None
    half = backend.kernels / "hello-abcdef12" / "v1"  # a push killed before state.json was written
    (half / "kernel").mkdir(parents=True)
    assert backend.find_pushed("hello-abcdef12", None) is None  # not a version
    result = backend.push(folder)
    assert result.version == 1 and (half / "state.json").exists()
    assert backend.find_pushed("hello-abcdef12", None) == result
    assert backend.find_pushed("hello-abcdef12", 1) is None


# -- downloads: staged, complete or absent ------------------------------------------------------------

class OutputBackend(FakeBackend):
    def __init__(self, working: Path, fail_after: int | None = None):
        super().__init__()
        self.working, self.fail_after = working, fail_after

    def output(self, slug, version, dest, names):
        dest.mkdir(parents=True, exist_ok=True)
        for i, name in enumerate(names):
            if self.fail_after is not None and i >= self.fail_after:
                raise KeyboardInterrupt  # Ctrl-C half way through the files
            (dest / name).write_bytes((self.working / name).read_bytes())
        return [dest / n for n in names]

    def logs(self, slug, version):
        return "log\n"


def _tta(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"probs": torch.rand(2, 2), "files": ["a.png", "b.png"], "vocab": ["0", "1"], "spec": {},
                "metrics": {}}, folder / "tta.pkl")
    (folder / "metrics.json").write_text(json.dumps({"tta_error": 0.1}))


def test_an_interrupted_download_leaves_nothing_that_looks_complete(project, tmp_path):
    _tta(tmp_path / "working")
    run = add(project)
    run = project.store.set_status(run.id, Status.COMPLETE, version=1)
    project = Project(project.config, backend=OutputBackend(tmp_path / "working", fail_after=1))
    with pytest.raises(KeyboardInterrupt):
        collect.download(project, run)
    outputs = project.config.outputs_dir / run.slug
    assert list(outputs.iterdir()) == [] and project.store.get(run.id).output_dir == ""
    # A command killed outright leaves its staging folder; the next one removes it.
    (outputs / ".v1.partial-999999999").mkdir()
    project.backend.fail_after = None
    done = collect.download(project, run)
    assert sorted(p.name for p in outputs.iterdir()) == ["v1"]
    assert sorted(p.name for p in project.run_folder(done).iterdir()) == ["log.txt", "metrics.json", "tta.pkl"]
    assert done.metrics == {"tta_error": 0.1}
    again = collect.download(project, done)  # downloading again replaces the folder whole
    assert again.output_dir == done.output_dir and sorted(p.name for p in outputs.iterdir()) == ["v1"]


# -- unsafe outputs -------------------------------------------------------------------------------------

class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/toolkit-pwned",))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_pickle_that_would_run_code_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "tta.pkl"
    path.write_bytes(pickle.dumps({"probs": Evil()}))
    torch_path = tmp_path / "torch-tta.pkl"
    torch.save({"probs": Evil()}, torch_path)  # torch's own zip format, same payload
    for candidate in (path, torch_path):
        with pytest.raises(UnsafeOutput) as info:
            load_tta(candidate)
        assert str(candidate) in str(info.value)
    assert not Path("/tmp/toolkit-pwned").exists()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_download_with_a_code_pickle_is_refused_and_not_kept(project, tmp_path):
    working = tmp_path / "working"
    _tta(working)
    (working / "tta.pkl").write_bytes(pickle.dumps({"probs": Evil()}))
    run = project.store.set_status(add(project).id, Status.COMPLETE, version=1)
    project = Project(project.config, backend=OutputBackend(working))
    with pytest.raises(UnsafeOutput) as info:
        collect.download(project, run)
    assert "tta.pkl" in str(info.value)
    assert list((project.config.outputs_dir / run.slug).iterdir()) == []


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "sub/../../escape.txt"])
def test_output_names_that_escape_their_folder_are_refused(tmp_path, name):
    working = tmp_path / "working"
    working.mkdir()
    (tmp_path / "escape.txt").write_text("secret")
    with pytest.raises(UnsafeOutput) as info:
        copy_outputs(working, tmp_path / "dest", (name,), 10**6)
    assert name in str(info.value)
    assert not (tmp_path / "dest" / "escape.txt").exists()


def test_links_pointing_outside_the_sandbox_are_refused(tmp_path):
    working = tmp_path / "working"
    working.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    (working / "tta.pkl").symlink_to(tmp_path / "secret.txt")
    (working / "out").symlink_to(tmp_path, target_is_directory=True)
    for name in ("tta.pkl", "out/secret.txt"):
        with pytest.raises(UnsafeOutput):
            copy_outputs(working, tmp_path / "dest", (name,), 10**6)
    assert safe_child(working, "ok.txt") == (working / "ok.txt").resolve()


def test_oversized_outputs_are_refused(tmp_path):
    working = tmp_path / "working"
    working.mkdir()
    (working / "tta.pkl").write_bytes(b"x" * 2048)
    with pytest.raises(UnsafeOutput) as info:
        copy_outputs(working, tmp_path / "dest", ("tta.pkl",), 1024)
    assert "tta.pkl" in str(info.value) and "max_output_mb" in str(info.value)
    assert not (tmp_path / "dest" / "tta.pkl").exists()
    with pytest.raises(UnsafeOutput):
        load_tta(working / "tta.pkl", max_bytes=1024)


def test_kernel_environment_has_no_credentials(tmp_path, monkeypatch):
    """The local backend starts kernels without any Kaggle credential variable."""
    from toolkit.backends.local import queue

    for var in queue.CREDENTIAL_VARS:
        monkeypatch.setenv(var, f"fake-{var.lower()}-7q7q7q")
    seen = {}

    class Popen:
        pid = 123

        def __init__(self, args, env, **kw):
            seen.update(env)

    monkeypatch.setattr(queue.subprocess, "Popen", Popen)
    run_dir = tmp_path / "run"
    (run_dir / "working").mkdir(parents=True)
    queue.write_state(run_dir, {"status": "QUEUED"})
    queue.start(run_dir, load_config(tmp_path))
    assert not any("7q7q7q" in v for v in seen.values()) and seen["KAGGLE_KERNEL_RUN_TYPE"] == "Batch"
