"""The weekly GPU quota against what a sweep will spend, session by session: the sessions that fit what is
left this week are pushed, the rest held until the quota refreshes (--force pushes everything now). The quota
figures every command shows and plans with come from `current`. A run too long for a session on its own is
refused before anything is recorded (`too_long`)."""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.backends.base import Quota
from toolkit.core.errors import RunTooLong
from toolkit.project import Project
from toolkit.runs.costs.estimate import Estimate
from toolkit.runs.costs.sessions import (PLAN_SHARE, Session, fit_weeks, gpus_for, over_limit, plan_limit_min,
                                         plan_sessions, week_start)
from toolkit.runs.lookup import listed


def current(project: Project) -> Quota | None:
    """The backend's GPU quota now (None: it has none, or a dry run that contacts nothing)."""
    return None if project.offline else project.backend.quota()


@dataclass(frozen=True)
class QuotaPlan:
    estimates: list[Estimate]  # one per planned run, in the sweep's order
    sessions: list[Session]
    quota: Quota | None
    forced: bool = False  # --force: everything now, whatever the quota says
    limit_min: float | None = None  # the longest session planned (None: the backend has no session limit)
    too_long: tuple[int, ...] = ()  # runs to push whose estimate alone is past limit_min

    @property
    def hours(self) -> float:
        return sum(s.minutes for s in self.sessions) / 60

    @property
    def idle_hours(self) -> float:
        return sum(s.idle_minutes for s in self.sessions) / 60

    @property
    def this_week(self) -> list[Session]:
        return [s for s in self.sessions if s.week == 0]

    @property
    def later(self) -> list[Session]:
        return [s for s in self.sessions if s.week > 0]

    def start(self, session: Session) -> float | None:
        """When the session may start (epoch seconds; None: now)."""
        return week_start(session.week, self.quota.refresh_at if self.quota else None)

    def session_of(self) -> dict[int, Session]:
        """Each planned run's session, by its index in the sweep."""
        return {member: s for s in self.sessions for member in s.members}


def plan(project: Project, estimates: list[Estimate], pushing: list[bool], size: int = 1,
         force: bool = False) -> QuotaPlan:
    """The sessions the runs to push will take (packed `size` to a kernel) and the week each fits in."""
    runs_here = project.backend_type.runs_here  # this machine's runs: Kaggle's GPU estimates say nothing of them
    gpus = gpus_for(project.config.accelerator, runs_here)
    limit = None if runs_here else plan_limit_min(project.config.session_timeout_s)
    sessions = plan_sessions(estimates, pushing, size, gpus, limit)
    quota = current(project)
    if quota is not None and not force:
        sessions = fit_weeks(sessions, quota.left_hours, quota.allowed_hours)
    return QuotaPlan(estimates, sessions, quota, force, limit, tuple(over_limit(estimates, pushing, limit)))


def too_long(project: Project, quota_plan: QuotaPlan) -> RunTooLong | None:
    """Why the plan cannot be pushed as it is: runs that would each outlast a session (None: all fit)."""
    runs = [f"{quota_plan.estimates[i].spec.slug} ({_span(quota_plan.estimates[i].minutes)})"
            for i in quota_plan.too_long]
    if not runs:
        return None
    limit = (f"the {_span(quota_plan.limit_min)} a session is planned to ({PLAN_SHARE:.0%} of "
             f"session_timeout_s, {_span(project.config.session_timeout_s / 60)})")
    what = (f"{runs[0]} is longer alone than {limit}: Kaggle may stop it" if len(runs) == 1 else
            f"{len(runs)} runs are each longer alone than {limit}: {listed(runs)}; Kaggle may stop them")
    return RunTooLong(f"{what} with no outputs", "train fewer epochs or at a smaller size, or raise "
                      "session_timeout_s, to just under 12 h at most, if your GPU sessions may run longer")


def _span(minutes: float) -> str:
    return f"{minutes / 60:.1f} h" if minutes >= 90 else f"{minutes:.0f} min"


def hold_later(project: Project, quota_plan: QuotaPlan, run_ids: dict[int, int]) -> None:
    """Hold the runs of later weeks' sessions until their week starts (`run_ids`: sweep index -> run id)."""
    for session in quota_plan.later:
        ids = [run_ids[i] for i in session.members if i in run_ids]
        project.store.hold(ids, quota_plan.start(session))
