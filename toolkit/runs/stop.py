"""kstop: stop queued or running runs.

The local backend kills the kernel's processes and records the version as stopped by the user.
Kaggle has no cancel call, so there the way to stop a kernel is its web UI. Stopping one run of a
pack stops its kernel, and with it every run packed beside it.
"""

from __future__ import annotations

from toolkit.core.errors import BackendError, RunNotFound, SpecError
from toolkit.core.status import Status
from toolkit.project import Project
from toolkit.registry.records import Run
from toolkit.runs.lookup import match_runs

STOPPED = "stopped by the user"


def chosen(project: Project, names: list[str] | None, everything: bool) -> list[Run]:
    """The unfinished runs named (slug, spec name or arch), or all of them with `everything`."""
    active = [r for r in project.store.runs(backend=project.config.backend) if not r.status.terminal]
    if names:
        return match_runs(active, names, lambda name: RunNotFound(f"no queued or running run matches '{name}'",
                                                                  "kstatus lists the runs and their states"))
    if not everything:
        raise SpecError("name the runs to stop (slug, name or arch)", "or pass --all to stop every unfinished run")
    return active


def stop(project: Project, runs: list[Run]) -> list[Run]:
    """Stop each run's kernel version once; returns every run affected (a pack's partners too)."""
    if not project.backend_type.can_stop:
        links = ", ".join(dict.fromkeys(r.url for r in runs if r.url))
        raise BackendError(f"{project.backend_type.name.capitalize()} has no cancel call: stop running kernels in "
                           "its web UI",
                           f"open {links}" if links else "kaggle.com -> Your Work -> Code")
    store, affected = project.store, []
    for kernel, version in dict.fromkeys((r.kernel, r.version) for r in runs):
        if version is None:  # never pushed: nothing runs yet, it only waits for a slot
            waiting = [r for r in store.runs(backend=project.config.backend)
                       if r.kernel == kernel and r.status == Status.NEW]  # a waiting pack: all of it
            affected += [store.set_status(r.id, Status.CANCEL_ACKNOWLEDGED, STOPPED) for r in waiting]
            continue
        state = project.backend.stop(kernel, version)
        together = [r for r in store.runs(backend=project.config.backend)
                    if r.kernel == kernel and r.version == version and not r.status.terminal]
        affected += [store.observe(r.id, state.status, state.failure_message) for r in together]
    return affected
