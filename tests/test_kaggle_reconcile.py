"""A push whose reply was lost: KaggleBackend.find_pushed over the real kaggle 2.2.5 client and the emulator,
and watch.wait.refresh_and_push recording the version Kaggle already made instead of pushing a second one."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest
from emulator import USER, KaggleEmulator, build_tiny_competition, write_kernel

from toolkit.backends.base import PushResult
from toolkit.core.config import load_config
from toolkit.core.errors import BackendError
from toolkit.core.status import Status
from toolkit.project import Project
from toolkit.registry.store import owner_id
from toolkit.runs.plan import plan_train
from toolkit.runs.schedule import record
from toolkit.runs.watch.wait import refresh_and_push

COMP = "tiny-comp"


@pytest.fixture
def emulator(start_emulator, tmp_path):
    build_tiny_competition(tmp_path / "competitions", COMP)
    return start_emulator()


@pytest.fixture
def backend(emulator, kaggle_backend):
    return kaggle_backend()


# -- find_pushed -----------------------------------------------------------------------------------------

def test_find_pushed_sees_a_version_newer_than_the_known_one(backend, emulator, tmp_path):
    folder = write_kernel(tmp_path / "kernels", "resnet18-abcdef12")
    assert backend.find_pushed("resnet18-abcdef12", None) is None  # no such kernel yet
    pushed = backend.push(folder)
    assert backend.find_pushed("resnet18-abcdef12", None) == PushResult(pushed.version, pushed.url)
    assert backend.find_pushed("resnet18-abcdef12", pushed.version) is None  # nothing newer than what we know
    assert backend.find_pushed("no-such-kernel", None) is None
    call = emulator.calls("GetKernel")[-1]  # the wire format: camelCase, this user's kernel
    assert call.body == {"userName": USER, "kernelSlug": "no-such-kernel"}


def test_find_pushed_reports_the_newest_version(backend, emulator, tmp_path):
    folder = write_kernel(tmp_path / "kernels", "resnet18-abcdef12")
    backend.push(folder)
    emulator.version("resnet18-abcdef12").status = "COMPLETE"  # frees the slot
    second = backend.push(folder)
    assert second.version == 2
    assert backend.find_pushed("resnet18-abcdef12", None).version == 2
    assert backend.find_pushed("resnet18-abcdef12", 1).version == 2
    # The version is what counts, whatever Kaggle's clock says about when it ran.
    emulator.version("resnet18-abcdef12").created = 0.0
    assert backend.find_pushed("resnet18-abcdef12", 1).version == 2


def test_find_pushed_on_an_empty_kernel_asks_its_status_and_finds_none(backend, emulator, tmp_path, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)
    emulator.fail("SaveKernel", "slots_full")
    with pytest.raises(BackendError):
        backend.push(write_kernel(tmp_path / "kernels", "resnet18-shell001"))
    assert emulator.kernels["resnet18-shell001"]["versions"] == {}  # what the refused push left
    assert backend.find_pushed("resnet18-shell001", None) is None  # GetKernel 500s, the status call 404s
    assert emulator.calls("GetKernelSessionStatus")


def test_find_pushed_reads_with_retries_and_treats_403_as_absent(backend, emulator, tmp_path, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)  # the retries' back-off, not what is tested here
    backend.push(write_kernel(tmp_path / "kernels", "resnet18-abcdef12"))
    emulator.fail("GetKernel", "500")
    emulator.fail("GetKernel", "drop")
    assert backend.find_pushed("resnet18-abcdef12", None).version == 1  # a read: retried like the others
    assert len(emulator.calls("GetKernel")) == 3
    emulator.fail("GetKernel", "403")  # Kaggle's answer for a slug that is not there
    assert backend.find_pushed("resnet18-abcdef12", None) is None
    emulator.fail("GetKernel", "500", times=10)  # a kernel with versions: its status call says so
    with pytest.raises(BackendError, match="HTTP 500"):
        backend.find_pushed("resnet18-abcdef12", None)


# -- refresh_and_push: a push whose reply was lost -----------------------------------------------------------------

def _project() -> Project:
    project = Project(load_config(backend="kaggle", competition=COMP))
    record(project, plan_train(project, ["resnet18"], {"epochs": 1}))
    return project


def _lost_reply(project: Project, emulator: KaggleEmulator):
    emulator.fail("SaveKernel", "drop_after")  # Kaggle makes the version; the reply never arrives
    with pytest.raises(BackendError, match="could not reach Kaggle"):
        refresh_and_push(project)
    (run,) = project.store.runs()
    assert (run.status, run.version, run.claim_owner) == (Status.NEW, None, owner_id())  # still claimed
    assert list(emulator.kernels[run.slug]["versions"]) == [1]
    return run


def test_a_lost_push_reply_is_reconciled_by_the_next_sync_of_a_dead_claimer(emulator):
    project = _project()
    run = _lost_reply(project, emulator)
    # The command that pushed died: its claim names a process that is gone.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with sqlite3.connect(project.store.path) as db:
        db.execute("UPDATE claims SET owner = ? WHERE run_id = ?",
                   (f"{owner_id().rsplit(':', 1)[0]}:{dead.stdout.strip()}", run.id))
    (after,) = refresh_and_push(project)
    assert (after.status, after.version, after.claim_owner) == (Status.QUEUED, 1, "")
    assert after.url == f"https://www.kaggle.com/code/{USER}/{run.slug}"
    assert list(emulator.kernels[run.slug]["versions"]) == [1]  # exactly one version on Kaggle
    assert len(emulator.calls("SaveKernel")) == 1 and emulator.calls("GetKernel")
    (polled,) = refresh_and_push(project)  # and it is followed like any pushed run
    assert polled.version == 1 and emulator.calls("GetKernelSessionStatus")[-1].body["versionLabel"] == "v1"


def test_a_lost_push_reply_is_reconciled_by_the_same_command_retrying(emulator):
    project = _project()
    run = _lost_reply(project, emulator)
    (after,) = refresh_and_push(project)  # the same process again: its own claim, so it asks before pushing
    assert (after.status, after.version) == (Status.QUEUED, 1)
    assert list(emulator.kernels[run.slug]["versions"]) == [1] and len(emulator.calls("SaveKernel")) == 1


def test_a_push_lost_before_kaggle_acted_is_pushed_again_once(emulator):
    project = _project()
    emulator.fail("SaveKernel", "drop")  # hung up before any version was made
    with pytest.raises(BackendError):
        refresh_and_push(project)
    (after,) = refresh_and_push(project)
    assert (after.status, after.version) == (Status.QUEUED, 1)
    assert list(emulator.kernels[after.slug]["versions"]) == [1] and len(emulator.calls("SaveKernel")) == 2


def test_a_live_claimer_is_left_alone(emulator):
    project = _project()
    run = _lost_reply(project, emulator)
    with sqlite3.connect(project.store.path) as db:  # another command, still running, holds the claim
        db.execute("UPDATE claims SET owner = ? WHERE run_id = ?", (f"{owner_id().rsplit(':', 1)[0]}:1", run.id))
    (after,) = refresh_and_push(project)
    assert (after.status, after.version) == (Status.NEW, None)
    assert len(emulator.calls("SaveKernel")) == 1 and not emulator.calls("GetKernel")


def test_a_reconcile_that_fails_does_not_forget_when_the_lost_push_began(emulator, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)
    project = _project()
    run = _lost_reply(project, emulator)
    emulator.fail("GetKernel", "500", times=10)  # Kaggle is unwell while the next sync asks
    with pytest.raises(BackendError, match="HTTP 500"):
        refresh_and_push(project)
    emulator.faults.clear()
    (after,) = refresh_and_push(project)
    assert (after.status, after.version) == (Status.QUEUED, 1)
    assert list(emulator.kernels[run.slug]["versions"]) == [1]  # not a second version
