"""The commands' flows, run in-process with their events collected in a list: a push that trains and waits, the pull
that reads each run's outputs once, one bad run's outputs refused without hiding the others, a copied project that
reads only its own files, an ensemble, status and stop; push, watch and pull over the Kaggle emulator. Two tiny runs
are trained once for the module; every test works on its own copy of that project (a project is its folder)."""

from __future__ import annotations

import os
import pickle
import shutil
import sys
from pathlib import Path

import pytest

from toolkit.core.config import load_config
from toolkit.core.errors import RunNotFound
from toolkit.core.status import Status
from toolkit.flows import ensemble as ensembling
from toolkit.flows import events as ev
from toolkit.flows import pull, status
from toolkit.flows import push as pushing
from toolkit.project import Project

pytestmark = pytest.mark.e2e
TINY = dict(item="Resize(16)", batch="aug_transforms(size=16, do_flip=False)", epochs=1, bs=16)
POLL = {"poll_initial_s": 0.3, "poll_max_s": 1.0, "concurrency": 2}  # two kernels at once: one a core


def project_at(folder: Path, **settings) -> Project:
    return Project(load_config(folder, **{**POLL, **settings}))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A project with two finished tiny runs (one pretrained from the demo's weights), pulled."""
    from toolkit.competitions.demo import build_competition, build_weights

    root = tmp_path_factory.mktemp("trained")
    build_competition(root / "competitions", limit=40)
    build_weights(root / "datasets")
    events: list = []
    pushed = pushing.train(project_at(root), ["resnet18", "tf_efficientnet_lite0"], TINY, None,
                           pushing.Push(wait=True), events.append)
    assert [r.status for r in pushed.runs] == [Status.COMPLETE] * 2, pushed.runs
    assert any(isinstance(e, ev.Waiting) and e.runs for e in events) and any(isinstance(e, ev.Durations) for e in events)
    pull.outputs(project_at(root))
    return root


@pytest.fixture
def project(trained, tmp_path) -> Project:
    """This test's own copy of the trained project."""
    shutil.copytree(trained, tmp_path / "project", symlinks=True)
    return project_at(tmp_path / "project")


def test_a_dry_run_renders_and_records_nothing(tmp_path):
    from toolkit.competitions.demo import build_competition

    build_competition(tmp_path / "competitions", limit=40)
    events: list = []
    assert pushing.train(project_at(tmp_path), ["resnet18"], TINY, False, pushing.Push(dry_run=True),
                         events.append) is None
    [rendered] = [e for e in events if isinstance(e, ev.Rendered)]
    assert (tmp_path / rendered.folder / "kernel-metadata.json").is_file()
    assert project_at(tmp_path).store.runs() == []


def test_pull_reads_each_runs_tta_once_and_writes_the_table_and_report(project):
    opened: list[str] = []
    sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" and str(args[0]).endswith(
        "tta.pkl") and str(args[0]).startswith(str(project.config.project_dir)) and not _writes(args) else None)
    shutil.rmtree(project.config.outputs_dir)  # downloaded again, checked, and read from that check
    events: list = []
    pulled = pull.outputs(project, wait=False, emit=events.append)
    tta_reads = [p for p in opened if "/outputs/" in p]
    assert sorted(tta_reads) == sorted(set(tta_reads)) and len(tta_reads) == 2, opened
    [results] = [e for e in events if isinstance(e, ev.Results)]
    (comp, rows, curves, report), = results.tables
    assert comp == "digits-demo" and len(rows) == 2 and curves.is_file() and report.is_file()
    assert all(r.status == Status.COMPLETE for r in pulled.runs)
    opened.clear()
    pull.outputs(project, wait=False)  # on disk now: read once more, by this command, for its table
    assert len([p for p in opened if "/outputs/" in p]) == 2


def _writes(args) -> bool:
    """Whether an audited open is for writing (a download copying the file in is not a read of it)."""
    _, mode, flags = args
    return bool(mode and any(c in mode for c in "wax+")) or (mode is None and flags & (os.O_WRONLY | os.O_RDWR))


class Hostile:
    """Unpickling this runs code: what a tta.pkl must never be able to do."""

    def __reduce__(self):
        return (print, ("this ran",))


def test_a_hostile_tta_pkl_is_that_runs_error_and_the_others_table_goes_on(project):
    runs = project.store.runs(kind="train")
    bad, good = runs[0], runs[1]
    with open(project.run_folder(bad) / "tta.pkl", "wb") as fh:
        pickle.dump({"probs": Hostile()}, fh)
    events: list = []
    pulled = pull.outputs(project, wait=False, emit=events.append)
    states = {r.slug: r for r in pulled.runs}
    assert states[bad.slug].status == Status.ERROR and states[good.slug].status == Status.COMPLETE
    message = states[bad.slug].failure_message
    assert "not plain data" in message and "weights_only" not in message and "\n" not in message
    [failed] = [e for e in events if isinstance(e, ev.Failed)]
    assert failed.run.slug == bad.slug
    [results] = [e for e in events if isinstance(e, ev.Results)]
    rows = {row.slug: row for row in results.tables[0][1]}
    assert rows[good.slug].tta_error is not None and rows[bad.slug].status == "ERROR"


def test_a_copied_project_reads_only_its_own_outputs(trained, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained, copy, symlinks=True)
    moved = project_at(copy)
    runs = moved.store.runs(kind="train")
    assert all(not Path(r.output_dir).is_absolute() for r in runs)
    assert all(moved.run_folder(r).is_relative_to(copy) and moved.run_folder(r).is_dir() for r in runs)
    shutil.rmtree(moved.config.outputs_dir)  # gone here: downloaded again into the copy, never read from the original
    pulled = pull.outputs(moved, wait=False)
    assert all(moved.run_folder(r).is_relative_to(copy) and (moved.run_folder(r) / "tta.pkl").is_file()
               for r in pulled.runs)


def test_ensemble_submits_and_scores_on_the_local_leaderboard(project):
    events: list = []
    result = ensembling.ensemble(project, ensembling.Choice(top=2), events.append)
    assert result.submission.score is not None and len(result.members) == 2
    assert [type(e) for e in events if not isinstance(e, ev.Waiting)] == [ev.Members, ev.Ensembled, ev.Written]


def test_status_shows_the_runs_and_stop_has_nothing_to_stop(project):
    events: list = []
    shown = status.status(project, None, refresh=False, emit=events.append)
    assert len(shown.runs) == 2 and isinstance(events[0], ev.RunsShown)
    assert status.stop(project, None, every=True) == []


def test_stop_ends_a_running_kernel_named_by_one_of_its_fields(project):
    pushed = pushing.train(project, ["resnet18"], {**TINY, "epochs": 30}, None, pushing.Push(), lambda e: None)
    [run] = pushed.runs
    [stopped] = status.stop(project, ["epochs=30"], every=False)
    assert stopped.slug == run.slug and stopped.status == Status.CANCEL_ACKNOWLEDGED
    assert project.store.get(run.id).status == Status.CANCEL_ACKNOWLEDGED
    with pytest.raises(RunNotFound, match="no queued or running run matches 'epochs=30'"):
        status.stop(project, ["epochs=30"], every=False)  # it has ended: nothing of that name is left to stop


def test_the_flows_over_the_kaggle_emulator_push_watch_and_pull_a_version_without_outputs(start_emulator, tmp_path):
    """The same flows through the real kaggle client: a push, a watch until the version settles, then a pull
    that names the version which finished without its outputs (the emulator scripts none) as that run's ERROR."""
    from emulator import build_tiny_competition

    build_tiny_competition(tmp_path / "competitions", "tiny-comp")
    start_emulator(env={"TOOLKIT_POLL_INITIAL_S": "0.1", "TOOLKIT_POLL_MAX_S": "0.2"})
    project = Project(load_config(backend="kaggle", competition="tiny-comp"))
    events: list = []
    [pushed] = pushing.train(project, ["resnet18"], {"epochs": 1}, False, pushing.Push(), events.append).runs
    assert (pushed.status, pushed.version) == (Status.QUEUED, 1)
    [watched] = status.status(project, None, watch=True, emit=events.append).runs
    assert watched.status == Status.COMPLETE
    [pulled] = pull.outputs(project, wait=False, emit=events.append).runs
    assert pulled.status == Status.ERROR and pulled.failure_message.endswith("finished without tta.pkl, metrics.json")
    [failed] = [e for e in events if isinstance(e, ev.Failed)]
    assert failed.run.slug == pushed.slug and "scripted session, nothing ran" in failed.log_tail
    assert [type(e) for e in events if isinstance(e, (ev.Rendered, ev.RunsShown, ev.Results))] == \
        [ev.Rendered, ev.RunsShown, ev.Results]


def test_set_aside_runs_leave_the_pull(project):
    slug = project.store.runs(kind="train")[0].slug
    [aside] = pushing.aside(project, [slug], failed=False, undo=False)
    assert aside.aside and [r.slug for r in pull.outputs(project, wait=False).runs] != [] and \
        slug not in {r.slug for r in pull.outputs(project, wait=False).runs}


def test_each_console_script_once_on_the_trained_project(project):
    """The console scripts over these flows, each once, as a user runs them (the flows' behaviour is tested
    above; here: flags parsed, events shown, exit codes)."""
    from console import console

    folder = project.config.project_dir
    slug = project.store.runs(kind="train")[0].slug
    for args in (("kstatus", "--no-refresh"), ("kpull", "outputs", "--no-wait"), ("klogs", slug),
                 ("kstop", "--all"), ("kpush", "train", "--arch", "resnet18", "--item", "Resize(16)", "--dry-run"),
                 ("ksubmit", "ensemble", "--top", "1")):
        done = console(folder, *args, TOOLKIT_POLL_INITIAL_S="0.3", TOOLKIT_POLL_MAX_S="1")
        assert done.returncode == 0 and "Traceback" not in done.stderr, (args, done.stderr)
    assert "ensemble score:" in done.stdout
