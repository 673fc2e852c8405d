"""klogs prints a run's kernel log, running or finished; --follow prints it as it grows and ends with the
run's exit (3 when it ended in ERROR)."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from toolkit.cli.common import BackendOpt, app, open_project

logs_app = app("Print a run's kernel log.", group=False)


@logs_app.command()
def show_log(
    run: str = typer.Argument(..., help="The run by slug, name or arch."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Print new lines until the run ends (exit 3: failed)."),
    backend: Optional[str] = BackendOpt,
):
    """Print a run's log (a packed run's own lines); --follow streams it until the run ends."""
    from toolkit.runs import logs
    from toolkit.runs.wait import check_finished

    project = open_project(backend=backend)
    chosen = logs.pick(project, run)
    if not follow:
        text = logs.log(project, chosen)
        _write(text + _newline(text))
        return
    last = ""
    for piece in logs.follow(project, chosen):
        _write(piece)
        last = piece or last
    _write(_newline(last))
    check_finished([logs.ended(project, chosen)])


def _newline(text: str) -> str:
    """What ends the output with a newline: a log's last line may have none."""
    return "\n" if text and not text.endswith("\n") else ""


def _write(text: str) -> None:
    """Log text as it is (no markup, no wrapping), flushed so that a pipe sees each line as it comes."""
    sys.stdout.write(text)
    sys.stdout.flush()
