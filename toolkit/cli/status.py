"""kstatus shows every run and submission (refreshed from the backend, or watched until all have settled);
kstop stops queued or running runs."""

from __future__ import annotations

from typing import Optional

import typer
from rich.markup import escape

from toolkit.cli.common import BackendOpt, CompetitionOpt, app, live, open_project
from toolkit.cli.console import console, note

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
    from toolkit.cli.report import show_quota, show_timeouts
    from toolkit.cli.tables import status_table, submission_table
    from toolkit.runs.wait import check_finished, wait_for

    project = open_project(competition=competition, backend=backend, offline=not (refresh or watch))
    if watch:
        with live("Watching runs") as update:
            wait_for(project, competition, update)
    elif refresh:
        from toolkit.runs.schedule import refresh_and_push
        refresh_and_push(project)
    runs = project.store.runs(competition=competition, aside=every)
    config = project.config
    if runs:
        console.print(status_table(runs, title=f"Runs ({config.store_path.relative_to(config.project_dir)})"))
        show_timeouts(runs)
    aside = sum(r.aside for r in project.store.runs(competition=competition, aside=True))
    if aside and not every:
        note(f"{aside} run{'s' if aside > 1 else ''} set aside (kstatus --all lists them; kpush aside --undo RUN "
             "counts one again)")
    if not runs:
        console.print(f"no runs recorded{f' for {escape(competition)}' if competition else ''} yet "
                      "(kpush train --arch NAME starts one; kpush sweep FILE starts many)", highlight=False)
    subs = project.store.submissions(competition)
    if subs:
        console.print(submission_table(subs))
    if refresh or watch:
        from toolkit.runs.quota import current
        show_quota(current(project))
    if watch:
        check_finished(runs)


@stop_app.command()
def stop_runs(
    runs: Optional[list[str]] = typer.Argument(None, help="Runs by slug, name or arch."),
    every: bool = typer.Option(False, "--all", help="Stop every queued or running run."),
    backend: Optional[str] = BackendOpt,
):
    """Stop queued or running runs (local backend; on Kaggle, stop kernels in its web UI)."""
    from toolkit.cli.tables import status_table
    from toolkit.runs import stop

    project = open_project(backend=backend)
    chosen = stop.chosen(project, runs, every)
    if not chosen and project.backend_type.can_stop:
        console.print("no queued or running runs to stop")
        return
    stopped = stop.stop(project, chosen)
    partners = sorted({r.slug for r in stopped} - {r.slug for r in chosen})
    if partners:
        note(f"stopping a pack kernel stopped the runs packed with it too: {', '.join(partners)}")
    console.print(status_table(stopped, title="Stopped"))
