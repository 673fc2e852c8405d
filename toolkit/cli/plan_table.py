"""kpush sweep's plan as a table: what each row will do, its estimate and where that came from, the session it
runs in and when that session can start; its caption says what each source means."""

from __future__ import annotations

from rich.table import Table

from toolkit.backends.base import utc_minute
from toolkit.runs.outputs.results import fmt_value

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
    from toolkit.runs.costs.estimate import DEFAULT_MIN_PER_EPOCH
    from toolkit.runs.costs.priors import SOURCE
    from toolkit.runs.costs.sessions import PLAN_SHARE

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
