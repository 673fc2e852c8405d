"""Waiting for runs: poll the backend (pushing waiting runs as slots free) until every run of interest has
settled, showing each poll with the running runs' progress, and the exit a command that waited ends with when
any of them failed."""

from __future__ import annotations

from typing import Callable

from toolkit.core.errors import ToolkitError
from toolkit.core.poll import wait
from toolkit.core.status import Status
from toolkit.project import Project
from toolkit.registry.records import Run
from toolkit.runs.failures import retry_helps
from toolkit.runs.lookup import listed
from toolkit.runs.progress import Progress, Watch
from toolkit.runs.schedule import refresh_and_push

RUNS_FAILED_EXIT = 3  # a command that waited for runs, when any of them ended in ERROR


class RunsFailed(ToolkitError):
    """Runs a command waited for ended in ERROR; everything else it could do was done first."""

    exit_code = RUNS_FAILED_EXIT


def check_finished(runs: list[Run]) -> None:
    """Raise RunsFailed naming the runs that ended in ERROR (the last step of a command that waited), with
    `kpush retry` advised only for those a retry can help (not when their own code failed)."""
    failed = [r for r in runs if r.status == Status.ERROR and not r.aside]
    if not failed:
        return
    again = [r.slug for r in failed if retry_helps(r.failure_message)]
    fix = [r.slug for r in failed if r.slug not in again]
    hints = ([f"kpush retry {' '.join(again) if fix else ''}".rstrip() + " pushes them again"] if again else []) \
        + ([f"{'their' if not again else listed(fix) + ':'} own code failed: fix it and push again, or set "
            "them aside (kpush aside RUN) so they no longer count"] if fix else [])
    raise RunsFailed(f"{len(failed)} of {len([r for r in runs if not r.aside])} runs failed: "
                     f"{listed([r.slug for r in failed])}", "the causes are above; " + "; ".join(hints))


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
