"""A run's kernel log (klogs): the run a name picks, its log as far as it has got or as it grows, and how it
ended. A packed run's lines are its own only: the pack kernel prefixes each member's lines with `[slug] `."""

from __future__ import annotations

from typing import Iterator

from toolkit.core.errors import RunNotFound, SpecError
from toolkit.core.poll import wait
from toolkit.core.status import Status
from toolkit.project import Project
from toolkit.registry.records import Run
from toolkit.runs.lookup import listed, match_runs
from toolkit.runs.watch.refresh import refresh


def pick(project: Project, name: str) -> Run:
    """The one run `name` (slug, spec name or arch) picks on this backend; it must have been pushed, since only
    a pushed run has a log."""
    found = match_runs(project.store.runs(backend=project.config.backend), [name], lambda n: RunNotFound(
        f"no run matches '{n}' on {project.config.backend}", "kstatus lists the runs"))
    if len(found) > 1:
        raise SpecError(f"'{name}' names {len(found)} runs: {listed([r.slug for r in found])}",
                        "name one by its slug")
    run = found[0]
    if run.status == Status.NEW:
        raise RunNotFound(f"{run.slug} is not pushed yet (NEW): it has no log yet",
                          "kstatus --watch pushes waiting runs as slots free")
    if run.version is None:
        raise RunNotFound(f"{run.slug} was stopped before it was pushed: it has no log")
    return run


def own_lines(text: str, run: Run) -> str:
    """The lines of `text` that are the run's: all of them, or a packed run's without their prefix."""
    if not run.host:
        return text
    prefix = f"[{run.slug}] "
    return "".join(line[len(prefix):] for line in text.splitlines(keepends=True) if line.startswith(prefix))


def log(project: Project, run: Run) -> str:
    """The run's log as far as it has got."""
    return own_lines(project.backend.logs(run.kernel, run.version), run)


def follow(project: Project, run: Run) -> Iterator[str]:
    """The run's log as it grows, until its kernel version has ended; a packed run's in whole lines (its
    partners' lines come between them)."""
    pieces = project.backend.follow(run.kernel, run.version)
    if not run.host:
        yield from pieces
        return
    pending = ""
    for piece in pieces:
        pending += piece
        whole, _, pending = pending.rpartition("\n")
        if whole:
            yield own_lines(whole + "\n", run)
    if pending:
        yield own_lines(pending, run)


def ended(project: Project, run: Run) -> Run:
    """The run as it ended, once the backend says so (its kernel's log stream can end a little before its
    status does; a packed run's own end comes from the pack's results)."""
    initial, maximum = project.poll_intervals

    def check() -> Run:
        refresh(project, run.competition)
        return project.store.get(run.id)

    return wait(check, lambda r: r.status.settled, timeout_s=project.config.wait_timeout_s,
                initial_s=initial, max_s=maximum)
