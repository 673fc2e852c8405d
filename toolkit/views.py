"""Tables people read: run status (kstatus, live waits) and the ensemble summary."""

from __future__ import annotations

import time

from rich.table import Table

from .backends.base import Status
from .store import Run, Submission

STYLES = {Status.COMPLETE: "green", Status.ERROR: "red", Status.RUNNING: "cyan", Status.QUEUED: "yellow",
          Status.NEW: "dim"}


def _age(since: float | None, until: float | None = None) -> str:
    if not since:
        return "-"
    seconds = int((until or time.time()) - since)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def status_table(runs: list[Run], title: str = "Runs") -> Table:
    table = Table(title=title, header_style="bold")
    for column in ("id", "slug", "kind", "ver", "status", "time", "backend", "message / link"):
        table.add_column(column)
    for run in runs:
        style = STYLES.get(run.status, "")
        note = run.failure_message or ("waiting for a free slot" if run.status == Status.NEW else run.url)
        table.add_row(str(run.id), run.slug, run.kind, str(run.version or "-"),
                      f"[{style}]{run.status.value}[/]" if style else run.status.value,
                      _age(run.pushed_at, run.finished_at), run.backend, note or "")
    return table


def submission_table(subs: list[Submission]) -> Table:
    table = Table(title="Submissions", header_style="bold")
    for column in ("id", "competition", "members", "weights", "status", "score", "ref"):
        table.add_column(column)
    for sub in subs:
        table.add_row(str(sub.id), sub.competition, "\n".join(sub.members), ", ".join(f"{w:g}" for w in sub.weights),
                      sub.status + (f": {sub.error}" if sub.error else ""),
                      "-" if sub.score is None else f"{sub.score:.4f}", sub.ref)
    return table
