"""The sessions a sweep will run as, what each costs in quota, and which fit this week.

Kaggle charges GPU quota per session-hour, whatever the session does. A pack kernel (`pack`) on a machine
with a GPU per member trains them at once (runtime/pack_runner.py), so it costs its longest member plus one
start-up; with fewer GPUs than members it trains them one after another, and costs their sum. Packs pair runs
of about the same length (longest with next-longest), so little of a session's GPU time waits idle.

Every session is planned to end well inside the session limit (`plan_limit_min`): a session that runs past it is
stopped with no outputs at all. A pack that would not is split; a run too long on its own is the caller's to
refuse (`over_limit`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from toolkit.runs.costs.estimate import SESSION_OVERHEAD_MIN, Estimate

# GPUs a session gets per machine_shape. kaggle 2.2.5's help and kaggle-cli PR #1198 document NvidiaTeslaT4 as
# "T4 x2"; retired P100 runs on it (reference/kaggle-api-2.2.5.md). Other shapes are counted as one GPU: no
# source here says otherwise, and one is the safe side of the quota.
GPUS = {"NvidiaTeslaT4": 2, "NvidiaTeslaP100": 2}
WEEK_S = 7 * 24 * 3600  # Kaggle's GPU quota is weekly; quotaRefreshTime says when this week's ends
# The share of session_timeout_s a session is planned to fill. An estimate made before the run finished here
# is a model's: on the seed's runs its leave-one-out errors reach 13% (bench/cost_model.py), more for archs far
# from the seed's; 20% headroom keeps such a miss from costing a whole session.
PLAN_SHARE = 0.8


@dataclass(frozen=True)
class Session:
    members: tuple[int, ...]  # indices into the sweep's estimates, longest first
    minutes: float  # quota it costs
    idle_minutes: float = 0.0  # GPU minutes a member's GPU waits for its longer partner
    week: int = 0  # 0: fits what is left this week; 1: the week after the quota refreshes; ...


def gpus_for(accelerator: str | None, runs_here: bool) -> int:
    """GPUs a pack kernel can spread over: the local backend plans for one after another (this machine's
    GPUs are known only when the kernel runs)."""
    return 1 if runs_here or accelerator is None else GPUS.get(accelerator, 1)


def plan_limit_min(session_timeout_s: float) -> float:
    """The longest session planned, in minutes: PLAN_SHARE of the session limit."""
    return PLAN_SHARE * session_timeout_s / 60


def over_limit(estimates: list[Estimate], pushing: list[bool], limit_min: float | None) -> list[int]:
    """The runs to push whose estimate alone is past the planned session length (indices)."""
    if limit_min is None:
        return []
    return [i for i, (est, push) in enumerate(zip(estimates, pushing)) if push and est.minutes > limit_min]


def plan_sessions(estimates: list[Estimate], pushing: list[bool], size: int, gpus: int,
                  limit_min: float | None = None) -> list[Session]:
    """Group the runs that will be pushed into sessions of up to `size` (per competition, longest with
    next-longest), each ending inside `limit_min` where its runs allow, in the order of their first run in
    the sweep."""
    by_competition: dict[str, list[int]] = {}
    for index, (est, push) in enumerate(zip(estimates, pushing)):
        if push:
            by_competition.setdefault(est.spec.competition, []).append(index)
    sessions = []
    for indices in by_competition.values():
        ordered = sorted(indices, key=lambda i: -estimates[i].minutes)  # stable: ties keep the sweep's order
        minutes = {i: estimates[i].minutes for i in ordered}
        for start in range(0, len(ordered), size):
            sessions.extend(_within(ordered[start:start + size], minutes, gpus, limit_min))
    return sorted(sessions, key=lambda s: min(s.members))


def _within(pack: list[int], minutes: dict[int, float], gpus: int, limit_min: float | None) -> list[Session]:
    """The pack as one session, or split so each ends inside the limit: a member joins the session before it
    unless that would run it past both the limit and what its longest member takes anyway."""
    def session(group: list[int]) -> Session:
        return _session(tuple(group), [minutes[i] for i in group], gpus)

    groups = [[pack[0]]]
    for member in pack[1:]:
        longer = session(groups[-1] + [member]).minutes > max(limit_min or 0, session(groups[-1]).minutes)
        if limit_min is not None and longer:
            groups.append([member])
        else:
            groups[-1].append(member)
    return [session(group) for group in groups]


def _session(members: tuple[int, ...], minutes: list[float], gpus: int) -> Session:
    work = [m - SESSION_OVERHEAD_MIN for m in minutes]  # each estimate holds one start-up
    if len(members) == 1:
        return Session(members, minutes[0])
    if gpus >= len(members):
        return Session(members, SESSION_OVERHEAD_MIN + max(work), sum(max(work) - w for w in work))
    return Session(members, SESSION_OVERHEAD_MIN + sum(work))


def fit_weeks(sessions: list[Session], left_hours: float, allowed_hours: float) -> list[Session]:
    """Each session's week, in the sweep's order: this week while the quota left holds them, then the next
    week's whole quota, and so on (a later session never jumps ahead of an earlier one)."""
    week, budget, placed = 0, left_hours * 60, []
    for session in sessions:
        while session.minutes > budget and budget < allowed_hours * 60:  # a session longer than a week's quota
            week, budget = week + 1, allowed_hours * 60                  # goes first into a fresh week anyway
        budget -= session.minutes
        placed.append(replace(session, week=week))
    return placed


def week_start(week: int, refresh_at: float | None) -> float | None:
    """When a week's sessions can start (epoch seconds; None: now): from the quota's refresh, or a week from
    now where the backend did not say when that is."""
    if week == 0:
        return None
    return (refresh_at if refresh_at is not None else time.time() + WEEK_S) + (week - 1) * WEEK_S
