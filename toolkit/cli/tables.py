"""Tables people read: run status (kstatus, and live waits with progress), results, submissions (a sweep's plan:
plan_table.py)."""

from __future__ import annotations

import time

from rich.table import Table

from toolkit.backends.base import utc_minute
from toolkit.core.status import Status
from toolkit.kernel.runtime.failures import cause
from toolkit.registry.records import Run, Submission
from toolkit.runs.outputs.results import HEADERS, NUMERIC, ResultRow, fmt_value, shown_columns
from toolkit.runs.watch.timeouts import timed_out

STYLES = {Status.COMPLETE: "green", Status.ERROR: "red", Status.RUNNING: "cyan", Status.QUEUED: "yellow",
          Status.NEW: "dim", Status.CANCEL_REQUESTED: "magenta"}
# What a run in these states is doing, when it has no message of its own.
WAITING = {Status.NEW: "waiting for a free slot",
           Status.CANCEL_REQUESTED: "stopping: a cancel was requested (no outputs will come; not waited for)"}


def _held(run: Run) -> str:
    return f"held for the weekly GPU quota: pushed after {utc_minute(run.not_before)}" if run.held else ""


def _age(since: float | None, until: float | None = None) -> str:
    if not since:
        return "-"
    seconds = int((until or time.time()) - since)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def status_table(runs: list[Run], title: str = "Runs", progress: dict | None = None) -> Table:
    """`progress`: the running runs' (a live wait's), shown in a column of its own when there is any."""
    table = Table(title=title, header_style="bold")
    shown = bool(progress)
    for column in ("id", "slug", "kind", "ver", "status", "time", *(["progress"] if shown else []), "backend",
                   "message / link"):
        table.add_column(column, no_wrap=column == "progress")  # a bar is read whole
    for run in runs:
        style = "red" if timed_out(run) else STYLES.get(run.status, "")
        note = cause(run.failure_message, 120) or _held(run) or WAITING.get(run.status) or run.url
        status = run.status.value + (" (set aside)" if run.aside else "")
        cells = [str(run.id), run.slug, run.kind, str(run.version or "-"),
                 f"[{style}]{status}[/]" if style and not run.aside else status,
                 _age(run.pushed_at, run.finished_at)]
        if shown:
            cells.append(progress_cell(progress.get(run.slug)))
        table.add_row(*cells, run.backend, note or "")
    return table


PHASES = {"frozen": "frozen", "training": "training", "tta": "TTA", "outputs": "writing outputs"}
BAR = 10  # cells of an epoch bar


def progress_cell(p) -> str:
    """A running run's phase, epoch bar, latest validation error and time left; how long it has been silent
    when it stalled."""
    if p is None or p.phase is None:  # no progress line yet: only a silence worth a word
        return f"[red]silent {_span(p.silent_s)}[/], no progress line yet" if p is not None and p.stalled else ""
    parts = [PHASES.get(p.phase, p.phase)]
    if p.epochs:
        filled = round(BAR * min(p.epoch, p.epochs) / p.epochs)
        parts.append(f"{'█' * filled}{'░' * (BAR - filled)} {p.epoch}/{p.epochs}")
    if p.error_rate is not None:
        parts.append(f"err {p.error_rate:.3f}")
    if p.eta_s is not None:
        parts.append(f"eta {_span(p.eta_s)}")
    if p.stalled:
        parts.append(f"[red]silent {_span(p.silent_s)}[/]")
    return " ".join(parts)


def _span(seconds: float) -> str:
    """4m, 1h05m, 40s: a short duration."""
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m" if s >= 60 else f"{s}s")


def submission_table(subs: list[Submission]) -> Table:
    table = Table(title="Submissions", header_style="bold")
    for column in ("id", "competition", "members", "weights", "status", "score", "ref"):
        table.add_column(column)
    for sub in subs:
        table.add_row(str(sub.id), sub.competition, "\n".join(sub.members), ", ".join(f"{w:g}" for w in sub.weights),
                      sub.status + (f": {sub.error}" if sub.error else ""),
                      "-" if sub.score is None else f"{sub.score:.4f}", sub.ref)
    return table


def results_table(rows: list[ResultRow], title: str = "Results"):
    table = Table(title=title, header_style="bold")
    shown = shown_columns(rows)
    for column in shown:
        # Names stay whole (they are what --run takes); long transform expressions wrap instead.
        table.add_column(HEADERS.get(column, column), justify="right" if column in NUMERIC else "left",
                         no_wrap=column in ("slug", "arch"), overflow="fold")
    for row in rows:
        table.add_row(*(fmt_value(getattr(row, c)) for c in shown))
    return table
