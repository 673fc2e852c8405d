"""kpull: `kpull outputs` waits for kernels, downloads their outputs and shows the results; `kpull data` sets up
a Kaggle competition on this machine for the local backend."""

from __future__ import annotations

from typing import Optional

import typer
from rich.markup import escape

from toolkit.cli.common import BackendOpt, CompetitionOpt, app, live, open_project
from toolkit.cli.console import console, errors, note
from toolkit.core.errors import ToolkitError

pull_app = app("Wait for kernels and download their outputs.")
FORMATS = ("table", "csv", "json", "md")  # kpull outputs --format


@pull_app.command("outputs")
def pull_outputs(
    competition: Optional[str] = CompetitionOpt,
    backend: Optional[str] = BackendOpt,
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for unfinished kernels (default)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or md."),
):
    """Wait for kernels, download their TTA outputs, print the results table (one per competition)."""
    from toolkit.cli.report import show_failure, show_results
    from toolkit.reports import build, page
    from toolkit.runs import outputs, results
    from toolkit.runs.failures import failed
    from toolkit.runs.lookup import competitions
    from toolkit.runs.wait import check_finished

    if fmt not in FORMATS:
        raise ToolkitError(f"unknown format '{fmt}'", "use table, csv, json or md")
    project = open_project(backend=backend, competition=competition)
    comps = competitions(project)
    label = comps[0] if len(comps) == 1 else f"{len(comps)} competitions ({', '.join(comps)})"
    with live(f"Waiting for {label} kernels", shown=wait and fmt == "table") as update:
        runs = outputs.pull_outputs(project, comps[0] if len(comps) == 1 else None, update, do_wait=wait)
    if not runs:
        note(f"no runs recorded for {label} on {project.config.backend} yet (kpush train --arch NAME starts one)")
    for run in runs:
        if failed(run):  # ERROR, or ran past the session limit
            show_failure(run, outputs.log_tail(project, run))
    tables, per_class = [], {}
    for comp in comps:
        mine = [r for r in runs if r.competition == comp]
        if mine:
            rows = results.result_rows(mine, project.backend_type.solution(project.config, comp))
            plot = results.plot_errors(mine, project.config.outputs_dir / f"results-{comp}.png")
            report = build.for_project(project, comp, mine, rows)
            written = page.write(report, page.report_path(project.config.outputs_dir, comp))
            for slug, errors in build.per_class_errors(report).items():
                per_class[slug] = {"per_class_error": errors}
            tables.append((comp, rows, plot, written))
    show_results(tables, fmt, project.config.project_dir, per_class)
    check_finished(runs)


@pull_app.command("data")
def pull_data(
    competition: Optional[str] = CompetitionOpt,
    force: bool = typer.Option(False, "--force", help="Replace the competition folder if it exists."),
):
    """Download a competition from Kaggle into competitions/<slug>/ for the local backend (needs credentials)."""
    from toolkit.backends.kaggle.download import fetch
    from toolkit.core.config import load_config

    config = load_config(competition=competition)
    with errors.status(f"Downloading {escape(config.competition)}") as spinner:
        got = fetch(config, config.competition, force, lambda line: spinner.update(escape(line)))
    where = got.path.relative_to(config.project_dir) if got.path.is_relative_to(config.project_dir) else got.path
    console.print(f"ready: {where} ({got.train_images} training images in {got.classes} classes, "
                  f"{got.test_images} test images)", highlight=False)
