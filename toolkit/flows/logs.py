"""klogs' flow: a run's kernel log as far as it has got, or followed as it grows until the run ends."""

from __future__ import annotations

from toolkit.flows.events import Emit, LogText, ignore
from toolkit.project import Project
from toolkit.registry.records import Run


def logs(project: Project, name: str, follow: bool = False, emit: Emit = ignore) -> Run | None:
    """The log of the run `name` picks, as LogText events (ending with a newline); with `follow`, the run as it
    ended (None without)."""
    from toolkit.runs.watch import logs as reading

    chosen = reading.pick(project, name)
    if not follow:
        text = reading.log(project, chosen)
        emit(LogText(text + _newline(text)))
        return None
    last = ""
    for piece in reading.follow(project, chosen):
        emit(LogText(piece))
        last = piece or last
    emit(LogText(_newline(last)))
    return reading.ended(project, chosen)


def _newline(text: str) -> str:
    """What ends the output with a newline: a log's last line may have none."""
    return "\n" if text and not text.endswith("\n") else ""
