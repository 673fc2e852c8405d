"""Setting runs aside (`kpush aside`): failed or unwanted runs stay in the registry and `kstatus --all` lists
them, but no command waits for them, counts them in its exit, pulls them into results or ensembles them any
more (the registry leaves them out unless asked: Store.runs(aside=True)). `--undo` counts them again; so does
a retry."""

from __future__ import annotations

from toolkit.core.errors import SpecError
from toolkit.core.status import Status
from toolkit.project import Project
from toolkit.registry.records import Run
from toolkit.runs.lookup import match_runs

FAILED = (Status.ERROR, Status.CANCEL_ACKNOWLEDGED)


def set_aside(project: Project, names: list[str], failed: bool = False, undo: bool = False) -> list[Run]:
    """Set aside (or, with `undo`, count again) the named training runs, and with `failed` every failed one."""
    if not names and not failed:
        raise SpecError("name the runs to set aside" if not undo else "name the runs to count again",
                        "by slug, name, arch or FIELD=VALUE, as kstatus --all lists them; --failed takes every "
                        "failed run")
    latest: dict[str, Run] = {}
    for run in project.store.runs(backend=project.config.backend, kind="train", aside=True):
        latest[run.slug] = run
    candidates = [r for r in latest.values() if r.aside == undo]
    chosen = [r for r in candidates if failed and r.status in FAILED]
    if names:
        what = "set aside" if undo else "counted"
        chosen += [r for r in match_runs(candidates, names, lambda name: SpecError(
            f"no {what} run matches '{name}'", "kstatus --all lists every run")) if r not in chosen]
    return project.store.mark_aside([r.id for r in chosen], not undo)
