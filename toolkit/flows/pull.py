"""kpull's flows: outputs (wait for the training runs, download each finished run's outputs once, checked; the
results table, the learning curves and the HTML report per competition) and data (a Kaggle competition set up
here for the local backend)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from toolkit.core.errors import ToolkitError
from toolkit.flows.events import Emit, Failed, Fetching, Note, Results, Said, Waiting, Written, ignore
from toolkit.project import Project
from toolkit.registry.records import Run

FORMATS = ("table", "csv", "json", "md")  # kpull outputs --format


@dataclass(frozen=True)
class Pulled:
    runs: list[Run]  # as they stand at the end: ERROR where their outputs were refused


def outputs(project: Project, wait: bool = True, fmt: str = "table", emit: Emit = ignore) -> Pulled:
    """kpull outputs: every training run of the competitions in question, waited for (unless not `wait`), their
    outputs downloaded and read once each; one table and one report per competition."""
    from toolkit.runs.lookup import competitions
    from toolkit.runs.outputs import loaded
    from toolkit.runs.outputs.fetch import log_tail
    from toolkit.runs.watch.failures import failed

    if fmt not in FORMATS:
        raise ToolkitError(f"unknown format '{fmt}'", "use table, csv, json or md")
    comps = competitions(project)
    label = comps[0] if len(comps) == 1 else f"{len(comps)} competitions ({', '.join(comps)})"
    read = loaded.Outputs(project)
    shown = wait and fmt == "table"
    runs = _pulled(project, comps[0] if len(comps) == 1 else None, read, wait,
                   (lambda polled, progress: emit(Waiting(f"Waiting for {label} kernels", polled, progress)))
                   if shown else None)
    if not runs:
        emit(Note(f"no runs recorded for {label} on {project.config.backend} yet (kpush train --arch NAME starts one)"))
    tables, per_class = _tables(project, comps, runs, read)
    for run in (read.current(r) for r in runs):
        if failed(run):  # ERROR, or ran past the session limit
            emit(Failed(run, "" if run.slug in read.refused else log_tail(project, run)))
    emit(Results(tables, fmt, project.config.project_dir, per_class))
    return Pulled([read.current(r) for r in runs])


def _pulled(project: Project, competition: str | None, read, wait: bool, on_update) -> list[Run]:
    """The training runs of `competition` (None: every competition), waited for when asked, each finished one's
    outputs on disk (downloaded when never downloaded, or deleted since)."""
    from toolkit.runs.outputs.fetch import fetch_missing
    from toolkit.runs.watch.wait import refresh_and_push, wait_for

    runs = wait_for(project, competition, on_update) if wait else refresh_and_push(project, competition)
    return [fetch_missing(project, r, read) for r in runs if r.kind == "train"]


def _tables(project: Project, comps: list[str], runs: list[Run], read) -> tuple[list, dict]:
    """Per competition: its result rows, curves and report, written; each run's per-class errors (json)."""
    from toolkit.reports import build, page

    tables, per_class = [], {}
    for comp in comps:
        mine = [r for r in runs if r.competition == comp]
        if mine:
            rows, built, written = _write_report(project, comp, mine, read)
            curves = page.curves_path(project.config.outputs_dir, comp) if built.curves else None
            per_class.update({slug: {"per_class_error": errors}
                              for slug, errors in build.per_class_errors(built).items()})
            tables.append((comp, rows, curves, written))
    return tables, per_class


def report(project: Project, competition: str, read, emit: Emit = ignore) -> None:
    """The competition's report written again from what is recorded (after a submission)."""
    runs = project.store.runs(backend=project.config.backend, competition=competition, kind="train")
    *_, path = _write_report(project, competition, runs, read)
    emit(Written(path.relative_to(project.config.project_dir)))


def _write_report(project: Project, competition: str, runs: list[Run], read) -> tuple[list, object, Path]:
    """The competition's result rows, its report built from them, and where that was written (its learning
    curves beside it, when it has any)."""
    from toolkit.reports import build, page
    from toolkit.runs.outputs.results import result_rows

    rows = result_rows(runs, read, project.backend_type.solution(project.config, competition))
    built = build.for_project(project, competition, runs, rows, read)
    outputs_dir = project.config.outputs_dir
    written = page.write(built, page.report_path(outputs_dir, competition), page.curves_path(outputs_dir, competition))
    return rows, built, written


def data(config, force: bool, emit: Emit = ignore):
    """kpull data: the competition downloaded from Kaggle into competitions/<slug>/ and checked."""
    from toolkit.backends.kaggle.download import fetch

    got = fetch(config, config.competition, force, lambda line: emit(Fetching(line)))
    where = got.path.relative_to(config.project_dir) if got.path.is_relative_to(config.project_dir) else got.path
    emit(Said(f"ready: {where} ({got.train_images} training images in {got.classes} classes, "
              f"{got.test_images} test images)"))
    return got
