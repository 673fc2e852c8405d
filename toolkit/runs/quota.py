"""The weekly GPU quota against what a sweep will spend, session by session: the sessions that fit what is
left this week are pushed, the rest held until the quota refreshes (--force pushes everything now). The quota
figures every command shows and plans with come from `current`."""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.backends.base import Quota
from toolkit.project import Project
from toolkit.runs.estimate import Estimate
from toolkit.runs.sessions import Session, fit_weeks, gpus_for, plan_sessions, week_start


def current(project: Project) -> Quota | None:
    """The backend's GPU quota now (None: it has none, or a dry run that contacts nothing)."""
    return None if project.offline else project.backend.quota()


@dataclass(frozen=True)
class QuotaPlan:
    estimates: list[Estimate]  # one per planned run, in the sweep's order
    sessions: list[Session]
    quota: Quota | None
    forced: bool = False  # --force: everything now, whatever the quota says

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
    gpus = gpus_for(project.config.accelerator, project.backend_type.runs_here)
    sessions = plan_sessions(estimates, pushing, size, gpus)
    quota = current(project)
    if quota is not None and not force:
        sessions = fit_weeks(sessions, quota.left_hours, quota.allowed_hours)
    return QuotaPlan(estimates, sessions, quota, force)


def hold_later(project: Project, quota_plan: QuotaPlan, run_ids: dict[int, int]) -> None:
    """Hold the runs of later weeks' sessions until their week starts (`run_ids`: sweep index -> run id)."""
    for session in quota_plan.later:
        ids = [run_ids[i] for i in session.members if i in run_ids]
        project.store.hold(ids, quota_plan.start(session))
