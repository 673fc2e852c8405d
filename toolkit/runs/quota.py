"""The weekly GPU quota against what a sweep will spend: refused before anything is pushed when it does not
fit (--force pushes anyway)."""

from __future__ import annotations

from toolkit.core.errors import ToolkitError
from toolkit.project import Project
from toolkit.runs.estimate import Estimate


def check_quota(project: Project, estimates: list[Estimate], force: bool = False) -> str:
    """Compare the estimate with the backend's GPU hours left; refuse (unless forced) when it does not fit.
    Returns a line to show the user ("" when the backend has no quota)."""
    hours = sum(e.minutes for e in estimates) / 60
    quota = project.backend.quota()
    if quota is None:
        return ""
    line = (f"estimated {hours:.1f} GPU hours for {len(estimates)} runs; {quota.left_hours:.1f} of "
            f"{quota.allowed_hours:.0f} hours left this week")
    if hours > quota.left_hours and not force:
        raise ToolkitError(f"sweep needs about {hours:.1f} GPU hours but only {quota.left_hours:.1f} are left "
                           f"(quota refreshes {quota.refresh or 'weekly'})",
                           "drop runs or epochs, wait for the refresh, or pass --force to push anyway")
    return line
