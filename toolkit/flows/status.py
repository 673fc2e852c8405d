"""kstatus's and kstop's flows: every run and submission as the backend last said (refreshed first, or watched
until every run has settled, pushing waiting runs as slots free), and stopping queued or running runs."""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.flows.events import Emit, Note, Quota, RunsShown, Said, Submissions, Waiting, ignore
from toolkit.project import Project
from toolkit.registry.records import Run


@dataclass(frozen=True)
class Shown:
    runs: list[Run]
    watched: bool


def status(project: Project, competition: str | None, refresh: bool = True, watch: bool = False,
           every: bool = False, emit: Emit = ignore) -> Shown:
    """kstatus: the runs (with those set aside when `every`) and the submissions; refreshed from the backend
    first, or watched until every run has settled."""
    if watch:
        from toolkit.runs.watch.wait import wait_for
        wait_for(project, competition, lambda polled, progress: emit(Waiting("Watching runs", polled, progress)))
    elif refresh:
        from toolkit.runs.watch.wait import refresh_and_push
        refresh_and_push(project)
    store, config = project.store, project.config
    runs = store.runs(competition=competition, aside=every)
    if runs:
        emit(RunsShown(runs, f"Runs ({config.store_path.relative_to(config.project_dir)})"))
        _timeouts(runs, emit)
    aside = sum(r.aside for r in store.runs(competition=competition, aside=True))
    if aside and not every:
        emit(Note(f"{aside} run{'s' if aside > 1 else ''} set aside (kstatus --all lists them; kpush aside --undo "
                  "RUN counts one again)"))
    if not runs:
        emit(Said(f"no runs recorded{f' for {competition}' if competition else ''} yet "
                  "(kpush train --arch NAME starts one; kpush sweep FILE starts many)"))
    subs = store.submissions(competition)
    if subs:
        emit(Submissions(subs))
    if refresh or watch:
        from toolkit.runs.costs.quota import current
        emit(Quota(current(project)))
    return Shown(runs, watch)


def _timeouts(runs: list[Run], emit: Emit) -> None:
    from toolkit.runs.watch.timeouts import timeout_note

    line = timeout_note(runs)
    if line:
        emit(Note(line))


def stop(project: Project, names: list[str] | None, every: bool, emit: Emit = ignore) -> list[Run]:
    """kstop: the runs named (or all unfinished ones) stopped; every run affected (a pack's partners too)."""
    from toolkit.runs import stop as stopping

    chosen = stopping.chosen(project, names, every)
    if not chosen and project.backend_type.can_stop:
        return []
    stopped = stopping.stop(project, chosen)
    partners = sorted({r.slug for r in stopped} - {r.slug for r in chosen})
    if partners:
        emit(Note(f"stopping a pack kernel stopped the runs packed with it too: {', '.join(partners)}"))
    return stopped
