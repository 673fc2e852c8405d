"""What each command does, in order: open the project, plan, record, push, wait, and show each step as it
happens (through report and views). The CLI parses flags and calls one of these; the steps themselves live
in their own modules (plan, schedule, collect, submit, stop, ...)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from rich.markup import escape

from .errors import ToolkitError
from .report import console, errors, need_competitions, note, notices, say_durations, show_quota

FORMATS = ("table", "csv", "json", "md")  # kpull outputs --format


@dataclass(frozen=True)
class Push:
    """How kpush pushes what it planned: --wait, --dry-run, --force and --pack."""

    wait: bool = False
    dry_run: bool = False
    force: bool = False
    pack: int = 1


def open_project(backend: Optional[str] = None, public: Optional[bool] = None, ready: bool = True,
                 offline: bool = False, **flags):
    """The project from flags > environment > toolkit.toml; `ready`: its run registry open, and rebuilt from
    the backend if it was lost; `offline`: the backend is never contacted (the registry is opened, and a lost
    one is only reported)."""
    from .config import load_config
    from .project import Project

    private = None if public is None else not public
    project = Project(load_config(backend=backend, private=private, **flags), offline=offline)
    if ready:
        from .recover import ensure
        ensure(project, note, may_rebuild=not offline)
    return project


@contextmanager
def live(title: str, shown: bool = True) -> Iterator:
    """A live status table while the block waits: yields its on_update (None when not shown)."""
    from .report import live_waiter

    update, stop = live_waiter(title) if shown else (None, lambda: None)
    try:
        yield update
    finally:
        stop()


# -- kpush ------------------------------------------------------------------------------------------------

def push_train(archs: list[str], params: dict, pretrained: Optional[bool], push: Push, **flags) -> None:
    """Render a training kernel per architecture; unless a dry run, record and push them."""
    from .plan import plan_train

    _check_pack(push.pack)
    project = open_project(ready=not push.dry_run, offline=push.dry_run, **flags)
    need_competitions(project)
    planned = plan_train(project, archs, params, pretrained)
    notices(planned)
    for item in planned:
        console.print(f"rendered {item.folder.relative_to(project.config.project_dir)}")
    if push.dry_run:
        return
    show_quota(project)
    _record_and_push(project, planned, push, f"Pushed to {project.config.backend}")


def push_sweep(file: Path, competition: Optional[str], pretrained: Optional[bool], push: Push, **flags) -> None:
    """Render every row of a sweep file and print the plan; unless a dry run, check the quota, record, push."""
    from . import schedule, sweep
    from .views import plan_table

    _check_pack(push.pack)
    project = open_project(ready=not push.dry_run, offline=push.dry_run, competition=competition, **flags)
    need_competitions(project)
    loaded, planned = sweep.plan_sweep(project, file, competition, pretrained)
    notices(planned)
    actions = schedule.actions(project, planned, push.force)  # what record() does with each
    estimates = sweep.estimate(project, [p.spec for p in planned])
    console.print(plan_table(loaded, planned, estimates, actions))
    if push.dry_run:
        return
    pushed = [e for e, a in zip(estimates, actions) if a is schedule.Action.PUSH]
    line = sweep.check_quota(project, pushed, push.force)
    if line:
        console.print(line)
    config = project.config
    _record_and_push(project, planned, push,
                     f"{loaded.path.name} on {config.backend} (at most {config.concurrency} at once)")


def push_retry(names: Optional[list[str]], wait: bool, **flags) -> None:
    """Push failed (or stopped) runs again as new versions, saying why each ended."""
    from . import schedule, selection
    from .report import show_retrying

    project = open_project(**flags)
    failed = selection.failed_runs(project, names)
    if not failed:
        console.print("no failed runs to retry")
        return
    show_retrying(failed, named=bool(names))
    push_and_show(project, [(run, "new") for run in schedule.retry(project, failed)], wait, "Retried")


def _check_pack(size: int) -> None:
    if size != 1:  # checked before anything is rendered or recorded
        from .pack import check_size
        check_size(size)


def _record_and_push(project, planned, push: Push, title: str) -> None:
    from .schedule import record

    recorded = record(project, planned, push.force)
    say_durations(project, recorded, planned)
    push_and_show(project, recorded, push.wait, title, planned, push.pack)


def push_and_show(project, recorded, wait: bool, title: str, planned=(), pack: int = 1) -> None:
    """Say which runs were skipped, pack new ones, push what slots allow, optionally wait, print the runs."""
    from .collect import check_finished, wait_for
    from .schedule import refresh_and_push
    from .views import status_table

    if pack != 1:
        from .pack import pack_runs
        for host, members in pack_runs(project, recorded, list(planned), pack):
            console.print(f"packed into {host}: {', '.join(members)}")
    for run, action in recorded:
        if action != "new":
            console.print(f"[dim]skipped {run.slug}: {action}[/]")
    slugs = {run.slug for run, _ in recorded}
    runs = [r for r in refresh_and_push(project) if r.slug in slugs]
    if wait:
        with live(f"Waiting: {title}") as update:
            runs = wait_for(project, None, update, slugs)
    console.print(status_table(runs, title=title))
    if wait:
        check_finished(runs)


# -- kpull ------------------------------------------------------------------------------------------------

def pull_outputs(fmt: str, wait: bool, **flags) -> None:
    """Wait for kernels, download their outputs, show failures and the results (one table per competition)."""
    from . import collect
    from .report import show_failure, show_results

    if fmt not in FORMATS:
        raise ToolkitError(f"unknown format '{fmt}'", "use table, csv, json or md")
    project = open_project(**flags)
    comps = collect.competitions(project)
    label = comps[0] if len(comps) == 1 else f"{len(comps)} competitions ({', '.join(comps)})"
    with live(f"Waiting for {label} kernels", shown=wait and fmt == "table") as update:
        runs = collect.pull_outputs(project, comps[0] if len(comps) == 1 else None, update, do_wait=wait)
    if not runs:
        note(f"no runs recorded for {label} on {project.config.backend} yet (kpush train --arch NAME starts one)")
    for run in runs:
        if run.status.value == "ERROR":
            show_failure(project, run)
    show_results(project, comps, runs, fmt)
    collect.check_finished(runs)


def pull_data(competition: Optional[str], force: bool) -> None:
    """Download a competition from Kaggle into competitions/<slug>/, checked, with a spinner meanwhile."""
    from .config import load_config
    from .fetch_data import fetch

    config = load_config(competition=competition)
    with errors.status(f"Downloading {escape(config.competition)}") as spinner:
        got = fetch(config, config.competition, force, lambda line: spinner.update(escape(line)))
    where = got.path.relative_to(config.project_dir) if got.path.is_relative_to(config.project_dir) else got.path
    console.print(f"ready: {where} ({got.train_images} training images in {got.classes} classes, "
                  f"{got.test_images} test images)", highlight=False)


# -- ksubmit, kstatus, kstop ------------------------------------------------------------------------------

def submit_ensemble(names: Optional[list[str]], weights: Optional[str], top: Optional[int],
                    select: Optional[str], message: str, predict: bool, force: bool, **flags) -> None:
    """Choose the members, push the ensemble kernel over them, wait, submit and show the score."""
    from . import submit
    from .report import show_ensemble, show_members, show_rerun_estimate
    from .select import choose, parse_weights

    project = open_project(**flags)
    comp = submit.choose_competition(project)
    submit.check_scorable(project, comp)
    parsed = parse_weights(weights)  # a mistyped --weights is told before the members are looked up
    candidates = submit.choose_members(project, comp, names)
    if top is not None and top > len(candidates) > 0:
        note(f"--top {top}: only {len(candidates)} finished run{'s' if len(candidates) > 1 else ''} of {comp} "
             f"to choose from; using {'it' if len(candidates) == 1 else 'all of them'}")
    members, parsed, steps = choose(candidates, top, select, parsed)
    show_members(members, parsed, steps)
    predict = predict or project.config.code_competition  # a code competition's rerun predicts
    if predict:
        show_rerun_estimate(project, members)
    with live("Ensemble kernel") as update:
        result = submit.run_ensemble(project, comp, members, parsed, message, update, force, predict)
    show_ensemble(project, comp, members, result, rerun=project.config.code_competition)


def show_status(competition: Optional[str], refresh: bool, watch: bool, **flags) -> None:
    """Refresh (or watch until every run has finished), then show the runs, submissions and quota."""
    from .collect import check_finished, wait_for
    from .views import status_table, submission_table

    project = open_project(competition=competition, offline=not (refresh or watch), **flags)
    if watch:
        with live("Watching runs") as update:
            wait_for(project, competition, update)
    elif refresh:
        from .schedule import refresh_and_push
        refresh_and_push(project)
    runs = project.store.runs(competition=competition)
    config = project.config
    if runs:
        console.print(status_table(runs, title=f"Runs ({config.store_path.relative_to(config.project_dir)})"))
    else:
        console.print(f"no runs recorded{f' for {escape(competition)}' if competition else ''} yet "
                      "(kpush train --arch NAME starts one; kpush sweep FILE starts many)", highlight=False)
    subs = project.store.submissions(competition)
    if subs:
        console.print(submission_table(subs))
    if refresh or watch:
        show_quota(project)
    if watch:
        check_finished(runs)


def stop_runs(names: Optional[list[str]], every: bool, **flags) -> None:
    """Stop the runs named (or every unfinished one) and show what stopped, pack partners included."""
    from . import stop
    from .views import status_table

    project = open_project(**flags)
    chosen = stop.chosen(project, names, every)
    if not chosen and project.backend_type.can_stop:
        console.print("no queued or running runs to stop")
        return
    stopped = stop.stop(project, chosen)
    partners = sorted({r.slug for r in stopped} - {r.slug for r in chosen})
    if partners:
        note(f"stopping a pack kernel stopped the runs packed with it too: {', '.join(partners)}")
    console.print(status_table(stopped, title="Stopped"))
