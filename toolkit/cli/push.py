"""kpush: render training kernels (from flags or a sweep file) and push them; retry failed runs; set runs aside.
Each command parses its flags, runs its flow (toolkit/flows/push.py) with the console showing its events, and
ends with the exit its runs call for."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from toolkit.cli.common import (AcceleratorOpt, BackendOpt, CheckOpt, CompetitionOpt, InternetOpt, PackOpt, PublicOpt,
                                TemplateOpt, WaitOpt, app, open_project)
from toolkit.cli.console import console
from toolkit.cli.show import Show

push_app = app("Render run specs into kernel folders and push them.")


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
    from toolkit.flows.push import Push, train
    from toolkit.specs.params import parse_params

    values = dict(competition=competition, item=item, batch=batch, epochs=epochs, lr=lr, accum=accum, bs=bs,
                  seed=seed, precision=precision, pipeline=pipeline, template=template,
                  params=parse_params(param) or None)
    project = open_project(ready=not dry_run, offline=dry_run, backend=backend, public=public,
                           accelerator=accelerator, internet=internet)
    with Show() as show:
        pushed = train(project, arch, values, pretrained, Push(wait, dry_run, force, pack, check), show)
    _end(pushed)


@push_app.command("sweep")
def push_sweep(
    file: Path = typer.Argument(..., help=r"Sweep file (TOML): a \[defaults] table and \[\[run]] rows."),
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
    from toolkit.flows.push import Push, sweep

    project = open_project(ready=not dry_run, offline=dry_run, competition=competition, backend=backend,
                           public=public, accelerator=accelerator, internet=internet)
    with Show() as show:
        pushed = sweep(project, file, competition, pretrained, Push(wait, dry_run, force, pack, check), show)
    _end(pushed)


@push_app.command("retry")
def push_retry(
    runs: Optional[list[str]] = typer.Argument(None, help="Runs by slug, name or arch (default: every failed run)."),
    backend: Optional[str] = BackendOpt,
    wait: bool = WaitOpt,
):
    """Push failed (or stopped) runs again as new versions, showing why each ended."""
    from toolkit.flows.push import retry

    with Show() as show:
        pushed = retry(open_project(backend=backend), runs, wait, show)
    if pushed is None:
        console.print("no failed runs to retry")
    _end(pushed)


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
    from toolkit.flows.push import aside

    changed = aside(open_project(backend=backend, offline=True), runs or [], failed, undo)
    if not changed:
        console.print("no runs to count again" if undo else "no failed runs to set aside")
        return
    console.print(status_table(changed, title="Counted again" if undo else "Set aside (kstatus --all lists them)"))


def _end(pushed) -> None:
    """The runs pushed, and the exit a wait calls for (3 when any of them failed)."""
    if pushed is None:
        return
    from toolkit.cli.tables import status_table
    from toolkit.runs.watch.wait import check_finished

    console.print(status_table(pushed.runs, title=pushed.title))
    if pushed.waited:
        check_finished(pushed.runs)
