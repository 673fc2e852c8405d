"""The members of a pack that ran past its session limit: Kaggle kept none of their outputs, finished or not
(runs/watch/timeouts.py), so none is lost. Each is requeued to run in a kernel of its own, automatically and once (it is
then no longer packed, and a run of its own that runs past the limit is told, not requeued), where it fits a
session alone: alone it shares the session with nobody, which is what changed. One too long even alone is told
how long it needs instead, since pushing it again would only spend another session. Its own epoch times in the
pack's log say how long it takes (a pack's members share the session's CPUs, so alone it is no slower); a member
that never got to an epoch is priced by its estimate."""

from __future__ import annotations

from toolkit.core.status import Status
from toolkit.project import Project
from toolkit.registry.records import Run
from toolkit.runs.costs.estimate import SESSION_OVERHEAD_MIN, TTA_EPOCHS, estimate, passes
from toolkit.runs.costs.sessions import plan_limit_min
from toolkit.runs.watch.logs import own_lines
from toolkit.runs.watch.progress import epoch_seconds, records
from toolkit.runs.watch.timeouts import log_of, span, timed_out

TOO_LONG = "alone it needs about"
REQUEUED = "requeued to run alone"  # the note a requeued member carries until its new version ends


def retry_members(project: Project, logs: dict | None = None) -> list[Run]:
    """Requeue, or tell, each member of a pack that ran past its limit and was not yet seen to; returns them.
    `logs`: the versions' logs this poll has read already (timeouts.log_of), each pack's read once."""
    logs, decided = {} if logs is None else logs, []
    for run in project.store.runs(backend=project.config.backend, kind="train"):
        if timed_out(run) and run.host and TOO_LONG not in run.failure_message:
            decided.append(_decide(project, run, alone_minutes(project, run, log_of(project, run, logs))))
    return decided


def _decide(project: Project, run: Run, minutes: float | None) -> Run:
    """Requeued when it fits a session alone (or how long it takes is not known), else told how long it needs."""
    if minutes is None or minutes <= plan_limit_min(project.config.session_timeout_s):
        return project.store.requeue(run.id, f"{REQUEUED}: {run.failure_message}")
    return project.store.observe(run.id, Status.CANCEL_ACKNOWLEDGED,
                                 f"{run.failure_message}; {TOO_LONG} {span(minutes * 60)}")


def alone_minutes(project: Project, run: Run, log: str) -> float | None:
    """How long the member takes in a session of its own: from its own epoch times in the pack's log, else its
    estimate where that prices this backend's sessions (not this machine's: None, unknown, there)."""
    spec = run.spec
    own = epoch_seconds(records(own_lines(log, run)))
    if own is not None:
        return (passes(spec) + TTA_EPOCHS) * own / 60 + SESSION_OVERHEAD_MIN
    return None if project.backend_type.runs_here else estimate(project, [spec])[0].minutes
