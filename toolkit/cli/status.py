"""kstatus shows every run and submission (refreshed from the backend, or watched until all have settled);
kstop stops queued or running runs. Both run their flows (toolkit/flows/status.py) with the console showing
their events."""

from __future__ import annotations

from typing import Optional

import typer

from toolkit.cli.common import BackendOpt, CompetitionOpt, app, open_project
from toolkit.cli.console import console
from toolkit.cli.show import Show

status_app = app("Show every run and submission.", group=False)
stop_app = app("Stop queued or running runs.", group=False)


@status_app.command()
def status(
    competition: Optional[str] = CompetitionOpt,
    backend: Optional[str] = BackendOpt,
    refresh: bool = typer.Option(True, "--refresh/--no-refresh", help="Ask the backend for live states first."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Keep refreshing (and pushing waiting runs) until every run has finished."),
    every: bool = typer.Option(False, "--all", "-a", help="List the runs set aside (kpush aside) too."),
):
    """Show runs (queued, running, done) with links and times, and the submissions."""
    from toolkit.flows.status import status as show_status
    from toolkit.runs.watch.wait import check_finished

    project = open_project(competition=competition, backend=backend, offline=not (refresh or watch))
    with Show() as show:
        shown = show_status(project, competition, refresh, watch, every, show)
    if shown.watched:
        check_finished(shown.runs)


@stop_app.command()
def stop_runs(
    runs: Optional[list[str]] = typer.Argument(None, help="Runs by slug, name or arch."),
    every: bool = typer.Option(False, "--all", help="Stop every queued or running run."),
    backend: Optional[str] = BackendOpt,
):
    """Stop queued or running runs (local backend; on Kaggle, stop kernels in its web UI)."""
    from toolkit.cli.tables import status_table
    from toolkit.flows.status import stop

    with Show() as show:
        stopped = stop(open_project(backend=backend), runs, every, show)
    if not stopped:
        console.print("no queued or running runs to stop")
        return
    console.print(status_table(stopped, title="Stopped"))
