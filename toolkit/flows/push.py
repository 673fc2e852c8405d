"""kpush's flows: train (runs from flags), sweep (runs from a file), retry, aside. Each renders what it pushes,
checks it first when asked, records it, packs it as planned, holds what waits for a later week's quota, pushes
what slots allow and, when asked, waits for it; every step reported as an event."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from toolkit.flows.events import (Checked, Checking, DatasetReady, Durations, Emit, Note, Packed, Quota, QuotaPlanned,
                                  Rendered, Retrying, Skipped, SweepPlan, Uploading, Waiting, ignore)
from toolkit.project import Project
from toolkit.registry.records import Run


@dataclass(frozen=True)
class Push:
    """How kpush pushes what it planned: --wait, --dry-run, --force, --pack, --check."""

    wait: bool = False
    dry_run: bool = False
    force: bool = False
    pack: int = 1
    check: bool = False


@dataclass(frozen=True)
class Pushed:
    """What a push flow leaves: the runs (as they stand at its end) and whether it waited for them."""

    runs: list[Run]
    title: str
    waited: bool


def train(project: Project, archs: list[str], values: dict, pretrained: bool | None, push: Push,
          emit: Emit = ignore) -> Pushed | None:
    """kpush train: one run per arch, from the flags' values. None for a dry run."""
    from toolkit.runs.plan import need_competitions, plan_train

    _check_pack(push.pack)
    need_competitions(project)
    planned = _rendered(project, plan_train(project, archs, values, pretrained), emit)
    _, quota_plan = _sessions(project, planned, push, hold=False)
    _too_long(project, quota_plan, push.dry_run, emit)
    if push.check:
        _check(project, planned, emit)
    if push.dry_run:
        return None
    emit(Quota(quota_plan.quota))
    return _record_and_push(project, planned, push, f"Pushed to {project.config.backend}", quota_plan, emit)


def sweep(project: Project, file: Path, competition: str | None, pretrained: bool | None, push: Push,
          emit: Emit = ignore) -> Pushed | None:
    """kpush sweep: every row of a sweep file; the sessions that fit this week's quota now, the rest after."""
    from toolkit.runs.plan import need_competitions, plan_sweep

    _check_pack(push.pack)
    need_competitions(project)
    loaded, planned = plan_sweep(project, file, competition, pretrained)
    _notices(planned, emit)
    actions, quota_plan = _sessions(project, planned, push, hold=True)
    emit(SweepPlan(loaded, planned, actions, quota_plan))
    _too_long(project, quota_plan, push.dry_run, emit)
    if push.check:
        _check(project, planned, emit)
    if push.dry_run:
        return None
    emit(QuotaPlanned(quota_plan))
    config = project.config
    title = f"{loaded.path.name} on {config.backend} (at most {config.concurrency} at once)"
    return _record_and_push(project, planned, push, title, quota_plan, emit)


def retry(project: Project, names: list[str] | None, wait: bool, emit: Emit = ignore) -> Pushed | None:
    """kpush retry: failed runs (named, or all) pushed again as new versions; None when there are none."""
    from toolkit.runs import schedule
    from toolkit.runs.lookup import failed_runs

    failed = failed_runs(project, names)
    if not failed:
        return None
    emit(Retrying(failed, named=bool(names)))
    _publish(project, [project.config.kernels_dir / run.kernel for run in failed], emit)
    return push_and_wait(project, [(run, "new") for run in schedule.retry(project, failed)], wait, "Retried", emit)


def aside(project: Project, names: list[str], failed: bool, undo: bool) -> list[Run]:
    """kpush aside: runs set aside (or counted again)."""
    from toolkit.runs.aside import set_aside

    return set_aside(project, names, failed, undo)


def _rendered(project: Project, planned: list, emit: Emit) -> list:
    _notices(planned, emit)
    for item in planned:
        emit(Rendered(item.folder.relative_to(project.config.project_dir)))
    return planned


def _notices(planned: list, emit: Emit) -> None:
    for line in _counted([item.notice for item in planned if item.notice]):
        emit(Note(line))


def _counted(lines: list[str]) -> list[str]:
    """Repeated lines once each, with how many times they came (a 200-row sweep's same note)."""
    from collections import Counter

    return [line if n == 1 else f"{line} (x{n})" for line, n in Counter(lines).items()]


def _check(project: Project, planned: list, emit: Emit) -> None:
    """Run each kernel on a miniature of its competition before anything is recorded or pushed (--check)."""
    from toolkit.runs.check import check_kernels

    took = check_kernels(project, planned, lambda line: emit(Checking(line)))
    emit(Checked(len(planned), took))


def _too_long(project: Project, quota_plan, dry_run: bool, emit: Emit) -> None:
    """Runs too long for a session on their own: a dry run says so, a push is refused before anything is
    recorded (their sessions may be stopped with no outputs)."""
    from toolkit.runs.costs.quota import too_long

    error = too_long(project, quota_plan)
    if error is not None and dry_run:
        emit(Note(str(error)))
    elif error is not None:
        raise error


def _check_pack(size: int) -> None:
    if size != 1:  # checked before anything is rendered or recorded
        from toolkit.runs.pack import check_size
        check_size(size)


def _sessions(project: Project, planned: list, push: Push, hold: bool):
    """What recording does with each planned run, and the sessions and weeks of those it pushes (`hold`: fit
    them to this week's quota)."""
    from toolkit.runs import schedule
    from toolkit.runs.costs.estimate import estimate
    from toolkit.runs.costs.quota import plan

    actions = schedule.actions(project, planned, push.force)  # what record() does with each
    pushing = [a is schedule.Action.PUSH for a in actions]
    return actions, plan(project, estimate(project, [p.spec for p in planned]), pushing, push.pack,
                         force=push.force or not hold)


def _record_and_push(project: Project, planned: list, push: Push, title: str, quota_plan, emit: Emit) -> Pushed:
    """Record the runs, pack them as the plan paired them, hold what waits for a later week, push the rest."""
    from toolkit.runs.costs.quota import hold_later
    from toolkit.runs.schedule import record

    _publish(project, [item.folder for item in planned], emit)
    recorded = record(project, planned, push.force)
    if project.backend_type.runs_here:  # kernels run on this machine: how long, before they start
        from toolkit.runs.costs.local_duration import LONG_MIN, durations
        emit(Durations(durations(project, recorded, planned, lambda line: emit(Note(line))), LONG_MIN))
    if push.pack != 1:
        from toolkit.runs.pack import pack_runs
        groups = [[planned[i].spec.slug for i in s.members] for s in quota_plan.sessions]
        for host, members in pack_runs(project, recorded, list(planned), groups):
            emit(Packed(host, members))
    hold_later(project, quota_plan, {i: run.id for i, (run, action) in enumerate(recorded) if action == "new"})
    return push_and_wait(project, recorded, push.wait, title, emit)


def _publish(project: Project, folders: list[Path], emit: Emit) -> None:
    """The datasets the kernels in `folders` attach (an offline kernel's pretrained weights, on Kaggle) uploaded once
    and ready, before any run is recorded or pushed."""
    from toolkit.runs.datasets import publish_all

    for published in publish_all(project, [f for f in folders if f.is_dir()], lambda text: emit(Uploading(text))):
        emit(DatasetReady.of(published))


def push_and_wait(project: Project, recorded: list, wait: bool, title: str, emit: Emit) -> Pushed:
    """Say which runs were skipped, push what slots allow, wait when asked; the runs as they end up."""
    from toolkit.runs.watch.wait import refresh_and_push, wait_for

    for run, action in recorded:
        if action != "new":
            emit(Skipped(run.slug, action))
    slugs = {run.slug for run, _ in recorded}
    runs = [r for r in refresh_and_push(project) if r.slug in slugs]
    if wait:
        runs = wait_for(project, None, lambda polled, progress: emit(Waiting(f"Waiting: {title}", polled, progress)),
                        slugs)
    return Pushed(runs, title, wait)
