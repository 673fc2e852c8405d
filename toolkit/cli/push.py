"""kpush: render training kernels (from flags or a sweep file) and push them; `kpush retry` pushes failed runs
again. Each command parses its flags, then runs its steps in order and shows each as it happens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from toolkit.cli.common import (
    AcceleratorOpt,
    BackendOpt,
    CheckOpt,
    CompetitionOpt,
    InternetOpt,
    PackOpt,
    PublicOpt,
    TemplateOpt,
    WaitOpt,
    app,
    live,
    open_project,
)
from toolkit.cli.console import console, errors, note
from toolkit.cli.report import notices, show_durations, show_quota

push_app = app("Render run specs into kernel folders and push them.")


@dataclass(frozen=True)
class Push:
    """How kpush pushes what it planned: --wait, --dry-run, --force and --pack."""

    wait: bool = False
    dry_run: bool = False
    force: bool = False
    pack: int = 1


@push_app.command("train")
def push_train(
    arch: list[str] = typer.Option(..., "--arch", "-a", help="timm architecture (repeatable)."),
    competition: Optional[str] = CompetitionOpt,
    item: Optional[str] = typer.Option(None, "--item", help="Item transforms, e.g. \"Resize(480, method='squish')\"."),
    batch: Optional[str] = typer.Option(None, "--batch", help="Batch transforms, e.g. \"aug_transforms(size=224, min_scale=0.75)\"."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Epochs after the frozen one (seed: 12)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (seed: 0.01)."),
    accum: Optional[int] = typer.Option(None, "--accum", help="Batches per optimizer step (1 = off)."),
    bs: Optional[int] = typer.Option(None, "--bs", help="Batch size (fastai default 64)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Validation split seed (seed: 42)."),
    precision: Optional[str] = typer.Option(None, "--precision", help="fp16 (default), bf16 or fp32."),
    pipeline: Optional[str] = typer.Option(None, "--pipeline", help="Data path: auto (fast on a GPU, default), fast, or seed (exactly the seed's)."),
    pretrained: Optional[bool] = typer.Option(None, "--pretrained/--scratch", help="Pretrained weights (default: when available)."),
    template: Optional[str] = TemplateOpt,
    param: Optional[list[str]] = typer.Option(None, "--param", "-p", help="A free parameter NAME=VALUE for the template (repeatable); VALUE a Python literal or a word."),
    backend: Optional[str] = BackendOpt,
    accelerator: Optional[str] = AcceleratorOpt,
    public: Optional[bool] = PublicOpt,
    internet: Optional[bool] = InternetOpt,
    pack: int = PackOpt,
    wait: bool = WaitOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Render kernel folders only; push nothing."),
    check: bool = CheckOpt,
    force: bool = typer.Option(False, "--force", help="Push a new version even if this spec was pushed."),
):
    """Render a training kernel per architecture and push it."""
    from toolkit.runs.plan import need_competitions, plan_train
    from toolkit.specs.params import parse_params

    params = dict(competition=competition, item=item, batch=batch, epochs=epochs, lr=lr, accum=accum, bs=bs,
                  seed=seed, precision=precision, pipeline=pipeline, template=template,
                  params=parse_params(param) or None)
    push = Push(wait, dry_run, force, pack)
    _check_pack(push.pack)
    project = open_project(ready=not dry_run, offline=dry_run, backend=backend, public=public,
                           accelerator=accelerator, internet=internet)
    need_competitions(project)
    planned = plan_train(project, arch, params, pretrained)
    notices(planned)
    for item_ in planned:
        console.print(f"rendered {item_.folder.relative_to(project.config.project_dir)}")
    _, quota_plan = _plan_sessions(project, planned, push, hold=False)
    _too_long(project, quota_plan, dry_run)
    if check:
        _check(project, planned)
    if dry_run:
        return
    show_quota(quota_plan.quota)
    _record_and_push(project, planned, push, f"Pushed to {project.config.backend}", quota_plan)


@push_app.command("sweep")
def push_sweep(
    file: Path = typer.Argument(..., help="Sweep file (TOML): a [defaults] table and [[run]] rows."),
    competition: Optional[str] = CompetitionOpt,
    pretrained: Optional[bool] = typer.Option(None, "--pretrained/--scratch", help="Override every row's pretrained."),
    backend: Optional[str] = BackendOpt,
    accelerator: Optional[str] = AcceleratorOpt,
    public: Optional[bool] = PublicOpt,
    internet: Optional[bool] = InternetOpt,
    pack: int = PackOpt,
    wait: bool = WaitOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Render and print the plan only; push nothing."),
    check: bool = CheckOpt,
    force: bool = typer.Option(False, "--force", help="Push new versions of runs already pushed, and every session now whatever the weekly quota."),
):
    """Render every run of a sweep file and push them, never more at once than `concurrency`: the sessions that
    fit this week's GPU quota now, the rest once it refreshes (kstatus pushes them then)."""
    from toolkit.cli.report import show_quota_plan
    from toolkit.cli.tables import plan_table
    from toolkit.runs.plan import need_competitions, plan_sweep

    push = Push(wait, dry_run, force, pack)
    _check_pack(pack)
    project = open_project(ready=not dry_run, offline=dry_run, competition=competition, backend=backend,
                           public=public, accelerator=accelerator, internet=internet)
    need_competitions(project)
    loaded, planned = plan_sweep(project, file, competition, pretrained)
    notices(planned)
    actions, quota_plan = _plan_sessions(project, planned, push, hold=True)
    console.print(plan_table(loaded, planned, actions, quota_plan))
    _too_long(project, quota_plan, dry_run)
    if check:
        _check(project, planned)
    if dry_run:
        return
    show_quota_plan(quota_plan)
    config = project.config
    _record_and_push(project, planned, push,
                     f"{loaded.path.name} on {config.backend} (at most {config.concurrency} at once)", quota_plan)


@push_app.command("retry")
def push_retry(
    runs: Optional[list[str]] = typer.Argument(None, help="Runs by slug, name or arch (default: every failed run)."),
    backend: Optional[str] = BackendOpt,
    wait: bool = WaitOpt,
):
    """Push failed (or stopped) runs again as new versions, showing why each ended."""
    from toolkit.cli.report import show_retrying
    from toolkit.runs import schedule
    from toolkit.runs.lookup import failed_runs

    project = open_project(backend=backend)
    failed = failed_runs(project, runs)
    if not failed:
        console.print("no failed runs to retry")
        return
    show_retrying(failed, named=bool(runs))
    push_and_show(project, [(run, "new") for run in schedule.retry(project, failed)], wait, "Retried")


@push_app.command("aside")
def push_aside(
    runs: Optional[list[str]] = typer.Argument(None, help="Runs by slug, name, arch or FIELD=VALUE."),
    failed: bool = typer.Option(False, "--failed", help="Every failed (or stopped) run."),
    undo: bool = typer.Option(False, "--undo", help="Count runs set aside again."),
    backend: Optional[str] = BackendOpt,
):
    """Set runs aside: kept, and listed by kstatus --all, but no longer waited for, counted in a command's exit
    or ensembled."""
    from toolkit.cli.tables import status_table
    from toolkit.runs.aside import set_aside

    project = open_project(backend=backend, offline=True)
    changed = set_aside(project, runs or [], failed, undo)
    if not changed:
        console.print("no runs to count again" if undo else "no failed runs to set aside")
        return
    console.print(status_table(changed, title="Counted again" if undo else "Set aside (kstatus --all lists them)"))


def _check(project, planned) -> None:
    """Run each kernel on a miniature of its competition before anything is recorded or pushed (--check)."""
    from toolkit.runs.check import check_kernels

    with errors.status("Checking kernels on a miniature of the competition") as spinner:
        took = check_kernels(project, planned, lambda line: spinner.update(escape(line)))
    console.print(f"checked {len(planned)} kernel{'s' if len(planned) > 1 else ''} in {took:.0f} s: each trained "
                  "an epoch on a miniature of its competition and wrote every output the toolkit reads")


def _too_long(project, quota_plan, dry_run: bool) -> None:
    """Runs too long for a session on their own: a dry run says so, a push is refused before anything is
    recorded (their sessions may be stopped with no outputs)."""
    from toolkit.runs.quota import too_long

    error = too_long(project, quota_plan)
    if error is not None and dry_run:
        note(str(error))
    elif error is not None:
        raise error


def _check_pack(size: int) -> None:
    if size != 1:  # checked before anything is rendered or recorded
        from toolkit.runs.pack import check_size
        check_size(size)


def _plan_sessions(project, planned, push: Push, hold: bool):
    """What recording does with each planned run, and the sessions and weeks of those it pushes (`hold`: fit
    them to this week's quota)."""
    from toolkit.runs import schedule
    from toolkit.runs.estimate import estimate
    from toolkit.runs.quota import plan

    actions = schedule.actions(project, planned, push.force)  # what record() does with each
    pushing = [a is schedule.Action.PUSH for a in actions]
    return actions, plan(project, estimate(project, [p.spec for p in planned]), pushing, push.pack,
                         force=push.force or not hold)


def _record_and_push(project, planned, push: Push, title: str, quota_plan) -> None:
    """Record the runs, pack them as the plan paired them, hold what waits for a later week, push the rest."""
    from toolkit.runs.quota import hold_later
    from toolkit.runs.schedule import record

    recorded = record(project, planned, push.force)
    if project.backend_type.runs_here:  # kernels run on this machine: how long, before they start
        from toolkit.runs.local_duration import LONG_MIN, durations
        show_durations(durations(project, recorded, planned, note), LONG_MIN)
    if push.pack != 1:
        from toolkit.runs.pack import pack_runs
        groups = [[planned[i].spec.slug for i in s.members] for s in quota_plan.sessions]
        for host, members in pack_runs(project, recorded, list(planned), groups):
            console.print(f"packed into {host}: {', '.join(members)}")
    hold_later(project, quota_plan, {i: run.id for i, (run, action) in enumerate(recorded) if action == "new"})
    push_and_show(project, recorded, push.wait, title)


def push_and_show(project, recorded, wait: bool, title: str) -> None:
    """Say which runs were skipped, push what slots allow, optionally wait, print the runs."""
    from toolkit.cli.tables import status_table
    from toolkit.runs.schedule import refresh_and_push
    from toolkit.runs.wait import check_finished, wait_for

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
