"""Scheduling: what to do with a planned run given what the registry holds, recording it, and pushing waiting
runs as the backend's slots allow. The only module that pushes training kernels."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from toolkit.backends.base import PushResult
from toolkit.core.errors import BackendError, NotebookNotFound, SlotsFull
from toolkit.core.status import Status
from toolkit.project import Project
from toolkit.registry.records import Run
from toolkit.specs.spec import renamed_slug

if TYPE_CHECKING:  # rendering (jinja2, nbformat) stays out of commands that only read the registry
    from toolkit.runs.plan import Planned

ACTIVE = (Status.QUEUED, Status.RUNNING, Status.CANCEL_REQUESTED)


class Action(enum.Enum):
    PUSH = "push"  # a new run, or with --force a new version of one that ended
    SKIP = "skip"  # the same spec is on record already
    ACTIVE = "active"  # --force on a run still queued or running: refused until it ends


def decide(existing: Run | None, force: bool) -> Action:
    """What recording a planned run does, given the latest run of its slug on record (None: none)."""
    if existing is None:
        return Action.PUSH
    if not force:
        return Action.SKIP
    return Action.ACTIVE if existing.status in ACTIVE else Action.PUSH


def actions(project: Project, planned: list[Planned], force: bool = False) -> list[Action]:
    """`decide` for each planned run, from the registry as it stands (what a dry run shows)."""
    return [decide(project.store.latest(p.spec.slug, project.config.backend), force) for p in planned]


def record(project: Project, planned: list[Planned], force: bool = False) -> list[tuple[Run, str]]:
    """Add runs to the store. The same spec again is skipped (with --force: a new version)."""
    results = []
    for item in planned:
        existing = project.store.latest(item.spec.slug, project.config.backend)
        action = decide(existing, force)
        if action is Action.SKIP:
            results.append((existing, f"already pushed as version {existing.version} ({existing.status.value}); "
                                      "use --force for a new version" if existing.version else
                                      "already waiting to be pushed"))
        elif action is Action.ACTIVE:
            raise BackendError(f"{item.spec.slug} is still {existing.status.value}",
                               "wait for it to finish before forcing a new version")
        elif existing:
            results.append((project.store.requeue(existing.id), "new"))
        else:
            results.append((project.store.add_run(item.spec.slug, "train", project.config.backend,
                                                  item.spec.competition, item.spec.content_hash,
                                                  item.spec.to_dict()), "new"))
    return results


def retry(project: Project, runs: list[Run]) -> list[Run]:
    """Put failed runs back in the queue (a new version is pushed when a slot is free)."""
    return [project.store.requeue(run.id) for run in runs]


def push_waiting(project: Project, competition: str | None = None) -> None:
    """Push waiting runs, oldest first: all of them to a backend that queues, else while fewer than
    `concurrency` kernels are active. Runs held for a later week's quota (`kpush sweep`) wait until then."""
    store, backend = project.store, project.backend
    waiting = [r for r in store.runs(backend=project.config.backend, competition=competition)
               if r.status == Status.NEW and not r.held]
    active = len({(r.kernel, r.version) for r in store.runs(backend=project.config.backend) if r.status in ACTIVE})
    for run in waiting:
        if store.get(run.id).status != Status.NEW:  # pushed meanwhile, with its pack
            continue
        if not backend.queues and active >= project.config.concurrency:
            break
        if push_run(project, run) is None:
            break
        active += 1


def push_run(project: Project, run: Run) -> Run | None:
    """Push the kernel of one NEW run (with the runs packed beside it); None when no slot is free."""
    store = project.store
    folder = project.config.kernels_dir / run.kernel
    if not (folder / "kernel-metadata.json").is_file():
        raise BackendError(f"kernel folder {folder} is missing", "render it again with kpush")
    together = [r.id for r in store.runs(backend=run.backend) if r.status == Status.NEW and r.kernel == run.kernel]
    leader = min(together)  # a pack is claimed through its first run, so two commands cannot both push it
    claim = store.claim(leader)  # one command pushes a kernel; see Store.claim
    if claim is None:  # another command is pushing it or already has
        return store.get(run.id)
    known = store.known_version(run.kernel, run.backend)
    if claim.previous_at is not None:  # an earlier push was cut off: did it reach the backend?
        found = project.backend.find_pushed(run.kernel, known)
        if found is not None:
            store.record_push(together, found.version, found.url)
            return store.get(run.id)
    try:
        result = _push(project, store.get(run.id), together, known)
    except SlotsFull:
        store.release(leader)
        return None
    store.record_push(together, result.version, result.url, project.config.session_timeout_s)
    return store.get(run.id)


def _push(project: Project, run: Run, together: list[int], known: int | None) -> PushResult:
    """Push the run's kernel. Kaggle answers "Notebook not found" for a slug that a refused first push left as
    an empty kernel (public push logs, 2026): when the registry never recorded a version of it, that empty
    kernel is deleted and the push sent again, or, if it cannot be deleted, the kernel is pushed under a
    fresh slug, recorded with its runs. Either way the new push is the kernel's first version."""
    folder, limit = project.config.kernels_dir / run.kernel, project.config.session_timeout_s
    try:
        return project.backend.push(folder, limit)
    except NotebookNotFound:
        if known is not None:  # a kernel with versions on record: not an empty one, and never deleted
            raise
    try:
        removed = project.backend.remove_shell(run.kernel)
    except BackendError:
        removed = False
    if removed:
        return project.backend.push(folder, limit)
    from toolkit.kernel.folders import copy_kernel_folder  # (rendering stays out of commands that never hit this)

    fresh = renamed_slug(run.host or run.slug, run.kernel)
    copy_kernel_folder(folder, fresh)
    project.store.rename_kernel(together, fresh)
    return project.backend.push(project.config.kernels_dir / fresh, limit)
