"""Bringing finished runs' outputs home (kpull outputs, ksubmit): staged, checked against the output contract,
then in place in one rename; what a download checked is kept for the command (loaded.Outputs), so the command
never reads it again."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

from toolkit.core.errors import OutputsBroken, ToolkitError, UnsafeOutput
from toolkit.core.procs import remove_abandoned
from toolkit.core.status import Status
from toolkit.kernel import contract
from toolkit.project import Project
from toolkit.registry.records import Run
from toolkit.runs.outputs.loaded import Outputs, RunOutputs, read, read_json, refusal
from toolkit.runs.watch.logs import own_lines

TRAIN_OUTPUTS = contract.TRAIN_OUTPUTS
ENSEMBLE_OUTPUTS = ("submission.csv", "ensemble.json")


def has_outputs(project: Project, run: Run, names: tuple[str, ...] = TRAIN_OUTPUTS) -> bool:
    """Whether the run's downloaded outputs are still on disk (outputs/ may have been deleted since)."""
    folder = project.run_folder(run)
    return folder is not None and complete(folder, names)


def complete(folder: Path, names: tuple[str, ...]) -> bool:
    """Whether every named output file is in `folder`."""
    return all((folder / n).is_file() for n in names)


def output_dir(project: Project, run: Run) -> Path:
    return project.config.outputs_dir / run.slug / f"v{run.version}"


def fetch_missing(project: Project, run: Run, outputs: Outputs | None = None,
                  names: tuple[str, ...] = TRAIN_OUTPUTS) -> Run:
    """A finished run's outputs: those on record, else a complete folder already on disk, else downloaded
    again from the backend (outputs/ was deleted, or the registry rebuilt). Outputs the kernel wrote wrong (or
    that would run code) make this run ERROR, never an ensemble member; the command goes on with the others."""
    if run.status != Status.COMPLETE or has_outputs(project, run, names):
        return run
    try:
        adopted = adopt(project, run, outputs, names)
    except UnsafeOutput:  # what is on disk is not sound: the backend's copy replaces it
        shutil.rmtree(output_dir(project, run), ignore_errors=True)
        adopted = None
    if adopted:
        return adopted
    try:
        return download(project, run, outputs, names)
    except UnsafeOutput as exc:  # OutputsBroken too: the kernel's doing, so the run failed
        return project.store.refuse_outputs(run.id, refusal(exc))


def download(project: Project, run: Run, outputs: Outputs | None = None,
             names: tuple[str, ...] = TRAIN_OUTPUTS) -> Run:
    """Fetch outputs into outputs/<slug>/v<version>/ via a temporary folder, so a half download never shows.

    The finished folder appears in one rename, only after every file is there and checked, so a folder
    under its final name is always complete. Two commands downloading at once both end with it; a folder
    left by a killed command (`.v<N>.partial-<pid>`, its process gone) is removed on the next try.
    """
    dest = output_dir(project, run)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(dest.parent, f".{dest.name}.*-*")
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _fetch(project, run, partial, names)
        (partial / "log.txt").write_text(project.backend.logs(run.kernel, run.version))
        missing = [n for n in names if not (partial / n).is_file()]
        if missing:
            raise OutputsBroken(f"{run.slug} v{run.version} finished without {', '.join(missing)}",
                                "a template must write every output: save_learner(learn, test_files) does")
        checked = _check(project, run, partial, names)
        # Another command may have put a complete folder there first. A version's outputs never change, so
        # theirs is as good as ours, and it stays in place for anyone reading it meanwhile.
        try:
            os.replace(partial, dest)
        except OSError:
            if not complete(dest, names):  # a folder someone emptied by hand
                shutil.rmtree(dest)
                os.replace(partial, dest)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return _record(project, run, dest, checked, outputs)


def _fetch(project: Project, run: Run, folder: Path, names: tuple[str, ...], backend=None) -> None:
    """The run's files from its kernel (on `backend`, default the project's); a packed run's live in `<run-slug>/`
    there and are moved up."""
    prefix = f"{run.slug}/" if run.host else ""
    (backend or project.backend).output(run.kernel, run.version, folder, tuple(prefix + n for n in names))
    folder.mkdir(parents=True, exist_ok=True)
    if run.host:
        for name in names:
            if (folder / run.slug / name).is_file():
                os.replace(folder / run.slug / name, folder / name)
        shutil.rmtree(folder / run.slug, ignore_errors=True)


def _check(project: Project, run: Run, folder: Path, names: tuple[str, ...]) -> RunOutputs | dict:
    """Sizes, then every file against the output contract: a training run's outputs as read once for the
    command (RunOutputs), an ensemble's ensemble.json; one line naming the run's file and what is wrong."""
    limit = project.config.max_output_mb * 2**20
    for name in names:
        size = (folder / name).stat().st_size
        if size > limit:
            raise UnsafeOutput(f"output '{name}' is {size} bytes, over the {limit}-byte limit",
                               "raise max_output_mb in toolkit.toml if this is expected")
    label = f"{run.slug} v{run.version}"
    if contract.TTA_FILE in names:
        return read(folder, label, run.slug, limit)
    return read_json(folder / "ensemble.json", label, OutputsBroken)


def _record(project: Project, run: Run, folder: Path, checked: RunOutputs | dict, outputs: Outputs | None) -> Run:
    if isinstance(checked, RunOutputs):
        checked = replace(checked, folder=folder)
        if outputs is not None:
            outputs.keep(run, checked)
    return project.store.set_outputs(run.id, project.kept(folder),
                                     checked.metrics if isinstance(checked, RunOutputs) else {})


def adopt(project: Project, run: Run, outputs: Outputs | None = None,
          names: tuple[str, ...] = TRAIN_OUTPUTS) -> Run | None:
    """Record a complete outputs folder found on disk (checked like a download); None when there is none."""
    dest = output_dir(project, run)
    if run.version is None or not complete(dest, names):
        return None
    return _record(project, run, dest, _check(project, run, dest, names), outputs)


def fetch_model(project: Project, run: Run) -> Path:
    """The run's outputs folder with its model files (model.pth, model.json) beside tta.pkl: what a predicting
    ensemble needs of a member it carries in a dataset. They come from the backend that trained the run (for the
    local and ray backends, a copy from its sandbox on this machine), staged, model.json checked against the output
    contract, then moved in."""
    folder = project.run_folder(run)
    if complete(folder, contract.MODEL_OUTPUTS):
        return folder
    from toolkit.backends import get_backend

    own = get_backend(replace(project.config, backend=run.backend))
    staging = folder.with_name(f".{folder.name}.model-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _fetch(project, run, staging, contract.MODEL_OUTPUTS, own)
        if not complete(staging, contract.MODEL_OUTPUTS):
            raise OutputsBroken(f"{run.slug} v{run.version} has no model files on the {run.backend} backend",
                                "a predicting ensemble rebuilds each member's model: train the run again")
        info = read_json(staging / contract.MODEL_INFO_FILE, f"{run.slug} v{run.version}")
        contract.check_model_info(info, f"{run.slug} v{run.version} {contract.MODEL_INFO_FILE}", OutputsBroken)
        for name in contract.MODEL_OUTPUTS:
            os.replace(staging / name, folder / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def log_tail(project: Project, run: Run, lines: int = 15) -> str:
    """The end of the run's log; for a packed run, only its own lines (the pack prefixes them)."""
    try:
        text = project.backend.logs(run.kernel, run.version) if run.version else ""
    except ToolkitError:  # the version is gone from the backend: the message is all there is
        return ""
    return "\n".join(own_lines(text, run).rstrip().splitlines()[-lines:])
