"""kpull: `kpull outputs` waits for kernels, downloads their outputs and shows the results; `kpull data` sets up
a Kaggle competition on this machine for the local backend. Each runs its flow (toolkit/flows/pull.py) with the
console showing its events."""

from __future__ import annotations

from typing import Optional

import typer

from toolkit.cli.common import BackendOpt, CompetitionOpt, app, open_project
from toolkit.cli.show import Show

pull_app = app("Wait for kernels and download their outputs.")


@pull_app.command("outputs")
def pull_outputs(
    competition: Optional[str] = CompetitionOpt,
    backend: Optional[str] = BackendOpt,
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for unfinished kernels (default)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or md."),
):
    """Wait for kernels, download their TTA outputs, print the results table (one per competition)."""
    from toolkit.flows.pull import FORMATS, outputs
    from toolkit.runs.watch.wait import check_finished

    if fmt not in FORMATS:  # before the project is opened: a typo costs nothing
        from toolkit.core.errors import ToolkitError
        raise ToolkitError(f"unknown format '{fmt}'", "use table, csv, json or md")
    with Show() as show:
        pulled = outputs(open_project(backend=backend, competition=competition), wait, fmt, show)
    check_finished(pulled.runs)


@pull_app.command("data")
def pull_data(
    competition: Optional[str] = CompetitionOpt,
    force: bool = typer.Option(False, "--force", help="Replace the competition folder if it exists."),
):
    """Download a competition from Kaggle into competitions/<slug>/ for the local backend (needs credentials)."""
    from toolkit.core.config import load_config
    from toolkit.flows.pull import data

    with Show() as show:
        data(load_config(competition=competition), force, show)
