"""Finding recorded runs by what the user names them (slug, spec name or arch), and the competitions a command
without --competition is about."""

from __future__ import annotations

from typing import Callable

from toolkit.core.errors import SpecError, ToolkitError
from toolkit.core.status import Status
from toolkit.project import Project
from toolkit.registry.records import Run
from toolkit.specs.params import parse_param


def match_runs(runs: list[Run], names: list[str], unmatched: Callable[[str], ToolkitError]) -> list[Run]:
    """The runs named by slug, spec name or arch, or by FIELD=VALUE (a spec field or a free parameter, such as
    eps=0.1 or template=mixup), each once, in the order named; `unmatched(name)` is the error for a name that
    matches none."""
    chosen: list[Run] = []
    for name in names:
        match = [r for r in runs if _named(r, name)]
        if not match:
            raise unmatched(name)
        chosen.extend(m for m in match if m not in chosen)
    return chosen


def _named(run: Run, name: str) -> bool:
    if name in (run.slug, getattr(run.spec, "name", None), getattr(run.spec, "arch", None)):
        return True
    if "=" not in name:
        return False
    key, value = parse_param(name)
    fields, params = run.spec.to_dict(), getattr(run.spec, "params", {})
    return (key in fields and fields[key] == value) or (key in params and params[key] == value)


def failed_runs(project: Project, names: list[str] | None = None) -> list[Run]:
    """The latest version of each training run that ended in ERROR (or was cancelled), matched by slug,
    spec name or arch when `names` are given."""
    latest: dict[str, Run] = {}
    for run in project.store.runs(backend=project.config.backend, kind="train"):
        latest[run.slug] = run
    failed = [r for r in latest.values() if r.status in (Status.ERROR, Status.CANCEL_ACKNOWLEDGED)]
    if not names:
        return failed
    return match_runs(failed, names, lambda name: SpecError(f"no failed run matches '{name}'",
                                                            "kstatus lists the runs and their states"))


def competitions(project: Project) -> list[str]:
    """What a command without --competition is about: the configured competition when one is set (flag,
    environment or toolkit.toml), else those of the recorded training runs, else the default one."""
    config = project.config
    if "competition" in config.given:
        return [config.competition]
    recorded = dict.fromkeys(r.competition for r in project.store.runs(backend=config.backend, kind="train"))
    return list(recorded) or [config.competition]


def listed(slugs: list[str], most: int = 5) -> str:
    """Slugs for a one-line message: the first `most`, and how many more."""
    return ", ".join(slugs[:most]) + (f" and {len(slugs) - most} more" if len(slugs) > most else "")
