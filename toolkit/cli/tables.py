"""Tables people read: run status (kstatus, and live waits with progress), a sweep's plan, results, submissions."""

from __future__ import annotations

import time
from collections import Counter

from rich.table import Table

from toolkit.backends.base import utc_minute
from toolkit.core.status import Status
from toolkit.kernel.runtime.failures import cause
from toolkit.registry.records import Run, Submission
from toolkit.runs.results import HEADERS, NUMERIC, ResultRow, fmt_value, shown_columns
from toolkit.runs.timeouts import timed_out

STYLES = {Status.COMPLETE: "green", Status.ERROR: "red", Status.RUNNING: "cyan", Status.QUEUED: "yellow",
          Status.NEW: "dim", Status.CANCEL_REQUESTED: "magenta"}
# What a run in these states is doing, when it has no message of its own.
WAITING = {Status.NEW: "waiting for a free slot",
           Status.CANCEL_REQUESTED: "stopping: a cancel was requested (no outputs will come; not waited for)"}


def _held(run: Run) -> str:
    return f"held for the weekly GPU quota: pushed after {utc_minute(run.not_before)}" if run.held else ""


def counted(lines: list[str]) -> list[str]:
    """Repeated lines once each, with how many times they came (a 200-row sweep's same note)."""
    return [line if n == 1 else f"{line} (x{n})" for line, n in Counter(lines).items()]


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


PLAN_ACTIONS = {"push": "push", "skip": "skip (pushed)", "active": "refused (not finished)"}


# Where each estimate comes from (the plan's "from" column, explained in its caption).
SOURCE_LABELS = {"recorded": "runs", "seed": "seed", "seed, scaled": "seed~", "timm": "timm", "params": "params",
                 "guess": "guess"}


def plan_title(name: str, quota_plan, runs: int) -> str:
    """"paddy-small.toml: 13 runs in 7 sessions, about 3.3 quota hours; 12.0 h left this week"."""
    pushing, sessions = sum(len(s.members) for s in quota_plan.sessions), len(quota_plan.sessions)
    title = f"{name}: {runs} runs" + ("" if pushing == runs else f", {pushing} to push")
    if sessions:
        title += f" in {sessions} session{'s' if sessions != 1 else ''}"
    title += f", about {quota_plan.hours:.1f} {'quota' if quota_plan.quota else 'GPU'} hours"
    if quota_plan.quota is not None:
        title += f"; {quota_plan.quota.left_hours:.1f} h left this week"
    return title


def _session_cell(numbers: dict, session) -> str:
    if session is None:
        return "-"
    if len(session.members) == 1:
        return str(numbers[session])
    return f"{numbers[session]} ({len(session.members)} runs, {session.minutes:.0f} min)"


def _starts(quota_plan, session) -> str:
    start = quota_plan.start(session) if session else None
    return "-" if session is None else "now" if start is None else f"[yellow]{utc_minute(start)}[/]"


def plan_table(loaded, planned, actions, quota_plan) -> Table:
    """kpush sweep's plan: what each row will do (schedule.decide's action), its estimate, the session it runs
    in (runs packed together share one) and when that session can start."""
    numbers = {s: n for n, s in enumerate(quota_plan.sessions, 1)}
    session_of = quota_plan.session_of()
    timed = quota_plan.quota is not None  # when each session starts is known only against a quota
    table = Table(title=plan_title(loaded.path.name, quota_plan, len(planned)), header_style="bold")
    for column in ("slug", "arch", "item", "batch", "ep", "bs", "accum", "seed", "est. min", "from", "session",
                   *(("starts",) if timed else ()), "action"):
        table.add_column(column)
    for index, (item_, est, action) in enumerate(zip(planned, quota_plan.estimates, actions)):
        spec, session = item_.spec, session_of.get(index)
        starts = [_starts(quota_plan, session)] if timed else []
        table.add_row(spec.slug, spec.arch, *(fmt_value(v) for v in (spec.item, spec.batch, spec.epochs, spec.bs,
                                                                     spec.accum, spec.seed)),
                      f"{est.minutes:.0f}", SOURCE_LABELS[est.source],
                      _session_cell(numbers, session), *starts, PLAN_ACTIONS[action.value])
    table.caption = "\n".join(_plan_notes(quota_plan)) or None
    return table


def _plan_notes(quota_plan) -> list[str]:
    """The plan's caption: what each `from` label in it means, the session length planned, idle GPU hours."""
    from toolkit.runs.estimate import DEFAULT_MIN_PER_EPOCH
    from toolkit.runs.priors import SOURCE
    from toolkit.runs.sessions import PLAN_SHARE

    sources = {SOURCE_LABELS[est.source] for est in quota_plan.estimates}
    notes = []
    if "runs" in sources:
        notes.append("runs: minutes per epoch of finished runs here with the same arch, transforms and bs")
    if sources & {"seed", "seed~"}:
        notes.append(f"seed: {SOURCE}" + ("; seed~: the arch's rows there, scaled to this size and bs as timm's "
                                          "figures scale" if "seed~" in sources else ""))
    if "timm" in sources:
        notes.append("timm: timm's benchmark cost per image of the arch at its size (RTX 3090, fp16), calibrated on "
                     "the seed's 13 runs (bench/results/cost_model.json)")
    for label, why in (("params", "priced from its parameter count"),
                       ("guess", f"{DEFAULT_MIN_PER_EPOCH:g} min/epoch, its parameter count unknown too")):
        archs = sorted({est.spec.arch for est in quota_plan.estimates if SOURCE_LABELS[est.source] == label})
        if archs:
            notes.append(f"{label}: {', '.join(archs)} in no timm benchmark table: {why}")
    if quota_plan.limit_min is not None:
        notes.append(f"sessions planned to end within {quota_plan.limit_min / 60:.1f} h ({PLAN_SHARE:.0%} of "
                     "session_timeout_s; a pack that would not is split)")
    if quota_plan.idle_hours >= 0.05:
        notes.append(f"packed partners finish at different times: about {quota_plan.idle_hours:.1f} GPU hours idle")
    return notes


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
