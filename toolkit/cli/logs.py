"""klogs prints a run's kernel log, running or finished; --follow prints it as it grows and ends with the
run's exit (3 when it ended in ERROR). The flow is toolkit/flows/logs.py."""

from __future__ import annotations

from typing import Optional

import typer

from toolkit.cli.common import BackendOpt, app, open_project
from toolkit.cli.show import Show

logs_app = app("Print a run's kernel log.", group=False)


@logs_app.command()
def show_log(
    run: str = typer.Argument(..., help="The run by slug, name or arch."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Print new lines until the run ends (exit 3: failed)."),
    backend: Optional[str] = BackendOpt,
):
    """Print a run's log (a packed run's own lines); --follow streams it until the run ends."""
    from toolkit.flows.logs import logs
    from toolkit.runs.watch.wait import check_finished

    with Show() as show:
        ended = logs(open_project(backend=backend), run, follow, show)
    if ended is not None:
        check_finished([ended])
