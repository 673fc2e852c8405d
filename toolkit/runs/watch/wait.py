"""Waiting for runs: poll the backend (pushing waiting runs as slots free) until every run of interest has
settled, showing each poll with the running runs' progress, and the exit a command that waited ends with when
any of them failed."""

from __future__ import annotations

from typing import Callable

from toolkit.core.errors import ToolkitError
from toolkit.core.poll import wait
from toolkit.project import Project
from toolkit.registry.records import Run
from toolkit.runs.lookup import listed
from toolkit.runs.schedule import push_waiting
from toolkit.runs.watch.failures import failed, retry_helps
from toolkit.runs.watch.pack_timeouts import retry_members
from toolkit.runs.watch.progress import Progress, Watch
from toolkit.runs.watch.refresh import refresh
from toolkit.runs.watch.timeouts import ADVICE, timed_out

RUNS_FAILED_EXIT = 3  # a command that waited for runs, when any of them ended in ERROR


class RunsFailed(ToolkitError):
    """Runs a command waited for ended in ERROR; everything else it could do was done first."""

    exit_code = RUNS_FAILED_EXIT


def check_finished(runs: list[Run]) -> None:
    """Raise RunsFailed naming the runs that failed (ended in ERROR or ran past the session limit: the last step
    of a command that waited), with what to do about each kind."""
    failing = [r for r in runs if failed(r) and not r.aside]
    if failing:
        raise RunsFailed(f"{len(failing)} of {len([r for r in runs if not r.aside])} runs failed: "
                         f"{listed([r.slug for r in failing])}", "the causes are above; " + "; ".join(_hints(failing)))


def _hints(failing: list[Run]) -> list[str]:
    """`kpush retry` only for the runs a retry can help; shorter runs for those past the session limit (the same
    run takes as long again); a fix for those whose own code failed. Runs are named where kinds are mixed."""
    again = [r.slug for r in failing if retry_helps(r.failure_message)]
    slow = [r.slug for r in failing if timed_out(r)]
    fix = [r.slug for r in failing if r.slug not in again + slow]
    alone = sum(bool(kind) for kind in (again, slow, fix)) == 1
    hints = [f"kpush retry{'' if alone else ' ' + ' '.join(again)} pushes them again"] if again else []
    if slow:
        hints.append(f"{'they' if alone else listed(slow)} ran past the session limit: {ADVICE}")
    if fix:
        hints.append(f"{'their' if alone else listed(fix) + ':'} own code failed, or wrote outputs the toolkit "
                     "refuses: fix it and push again, or set them aside (kpush aside RUN) so they no longer count")
    return hints


def refresh_and_push(project: Project, competition: str | None = None) -> list[Run]:
    """One poll of a command that waits: refresh the runs' states, requeue the members of a pack that ran past
    its session limit (pack_timeouts), then push waiting runs into freed slots."""
    logs: dict = {}  # a timed-out pack's log: read to explain it, then to requeue its members
    refresh(project, competition, logs)
    retry_members(project, logs)
    push_waiting(project, competition)
    return project.store.runs(backend=project.config.backend, competition=competition)


Update = Callable[[list[Run], dict[str, Progress]], None]  # each poll's runs, and the running ones' progress


def wait_for(project: Project, competition: str | None, on_update: Update | None = None,
             slugs: set[str] | None = None) -> list[Run]:
    """Poll (and push waiting runs) until every run of interest is finished or being stopped (Status.settled:
    a version left CANCEL_REQUESTED on Kaggle would otherwise hold the wait for its whole 12 hours); runs held
    for a later week's quota are not waited for. Each poll goes to `on_update` with the progress read from the
    running runs' logs, once a poll."""
    initial, maximum = project.poll_intervals
    watch = Watch(project)

    def check() -> list[Run]:
        runs = refresh_and_push(project, competition)
        return [r for r in runs if slugs is None or r.slug in slugs]

    def done(runs: list[Run]) -> bool:
        return all(r.status.settled or r.held for r in runs)

    return wait(check, done, timeout_s=project.config.wait_timeout_s, initial_s=initial, max_s=maximum,
                on_update=None if on_update is None else lambda runs: on_update(runs, watch.read(runs)))
