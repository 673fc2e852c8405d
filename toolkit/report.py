"""What commands print besides their tables: notes, failures, results per competition, estimates,
live waits. Console output goes to stdout (tables, results) and stderr (notes, errors)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Optional

from rich.console import Console
from rich.markup import escape

from .errors import ToolkitError

# Wide tables stay readable when output goes to a file or CI log instead of a terminal.
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 220)
errors = Console(stderr=True, width=None if sys.stderr.isatty() or os.environ.get("COLUMNS") else 220)


def note(line: str) -> None:
    errors.print(f"[yellow]note:[/] {escape(line)}", highlight=False, soft_wrap=True)


def notices(planned) -> None:
    """Each note once, with a count: a 200-row sweep of one arch has one thing to say, not 200."""
    from .views import counted

    for line in counted([item.notice for item in planned if item.notice]):
        note(line)


def need_competitions(project) -> None:
    """In a folder with no competition at all, say how to get one here (not a Makefile target)."""
    root = project.backend_type.competitions_root(project.config)
    if root is not None and not (root.is_dir() and any(p.is_dir() for p in root.iterdir())):
        raise ToolkitError(f"no competitions in {root}", "`python -m toolkit.demo` builds the demo competition "
                           "there; or put a competition folder in it, as the README's Competitions section shows")


def say_durations(project, recorded, planned) -> None:
    """Before a backend that runs kernels on this machine starts runs: how long each will take here, and the
    ways out."""
    if not project.backend_type.runs_here:
        return
    from .duration import LONG_MIN, describe, estimate, total_line

    specs = {item.spec.slug: item.spec for item in planned}
    cache: dict = {}
    durations = [(run.slug, estimate(project, specs[run.slug], cache, note)) for run, action in recorded
                 if action == "new" and run.slug in specs]
    if len(durations) <= 3:
        for slug, duration in durations:
            console.print(describe(slug, duration), highlight=False)
    elif durations:
        console.print(total_line(durations), highlight=False)
    if any(d.minutes is None or d.minutes >= LONG_MIN for _, d in durations):
        note("long on this machine: `--backend kaggle` runs it on Kaggle's GPUs instead; "
             "`kstop SLUG` stops a local run")


def live_waiter(title: str) -> tuple[Callable, Callable]:
    """A live status table for long waits: (on_update, stop)."""
    from rich.live import Live
    from .views import status_table

    live = Live(console=console, refresh_per_second=2, transient=False)
    started = []

    def update(runs) -> None:
        if not runs and not started:  # nothing to wait for: no empty table
            return
        if not started:
            live.start()
            started.append(True)
        live.update(status_table(runs, title=title))

    def stop() -> None:
        if started:
            live.stop()
            console.print()

    return update, stop


def show_failure(project, run) -> None:
    """The cause in one line, then the end of the log (which ends at that cause)."""
    from .collect import log_tail
    from .views import cause

    errors.print(f"[red]{run.slug} failed:[/] {escape(cause(run.failure_message) or 'no message')}")
    tail = log_tail(project, run)
    if tail:
        errors.print(tail, markup=False, highlight=False)


def show_results(project, comps: list[str], runs, fmt: str) -> None:
    """A results table and a plot (outputs/results-<competition>.png) per competition."""
    from . import results

    exported = []
    for comp in comps:
        mine = [r for r in runs if r.competition == comp]
        if not mine:
            continue
        rows = results.result_rows(mine, solution(project, comp))
        if fmt == "table":
            console.print(results.rich_table(rows, title=f"{comp}: results, best TTA error first"))
        exported += rows
        plot = results.plot_errors(mine, project.config.outputs_dir / f"results-{comp}.png")
        if plot:
            errors.print(f"validation error per epoch: {plot.relative_to(project.config.project_dir)}")
    if fmt != "table":
        sys.stdout.write(results.export(exported, fmt))


def solution(project, competition: str) -> Optional[Path]:
    """Local competitions may carry hidden labels; Kaggle's never reach us."""
    return project.backend_type.solution(project.config, competition)


def show_quota(project) -> None:
    """On Kaggle: GPU hours used (and reserved) of those allowed, and when they refresh."""
    quota = project.backend.quota()
    if quota is not None:
        reserved = f" + {quota.reserved_hours:.1f} h reserved by running sessions" if quota.reserved_hours else ""
        console.print(f"GPU quota: {quota.used_hours:.1f} h used{reserved} of {quota.allowed_hours:.1f} h "
                      f"({quota.left_hours:.1f} h left), refreshes {quota.refresh or 'weekly'}")


def show_rerun_estimate(project, members) -> None:
    """What predicting will cost (a code competition reruns it on the hidden test set), before it starts."""
    from .submit import rerun_estimate

    estimate = rerun_estimate(members)
    if estimate is None:
        return note("no rerun estimate: some members have no recorded TTA timing")
    seconds, images = estimate
    limit_h = project.config.rerun_limit_h
    console.print(f"rerun estimate: ~{seconds / 60:.1f} min to predict {images} test images with {len(members)} "
                  f"member(s), from their TTA timings (the hidden test set may be larger); limit {limit_h:g} h")
    if seconds >= 0.8 * limit_h * 3600:
        note(f"the rerun may come near the {limit_h:g} h limit: use fewer members (--top) or smaller images")


def show_ensemble(project, comp: str, members, result, rerun: bool = False) -> None:
    """The members' results, the submission, and the score beside the best single run's (`rerun`: the score
    comes from a code competition's rerun on the hidden test set, the members' from the public one)."""
    from . import results
    from .views import submission_table

    rows = results.result_rows(members, solution(project, comp))
    console.print(results.rich_table(rows, title="Ensemble members"))
    console.print(submission_table([result.submission]))
    sub = result.submission
    if not result.resubmitted:
        errors.print(f"[yellow]note:[/] this ensemble was already submitted (ref {sub.ref}); "
                     "use --force to submit it again")
    if sub.score is not None:
        best = max((r.test_accuracy for r in rows if r.test_accuracy is not None), default=None)
        line = f"ensemble score: {sub.score:.4f}"
        if rerun:
            line += " (the rerun on the hidden test set" + (f"; best single run on the public test set: {best:.4f})"
                                                            if best is not None else ")")
        elif best is not None:
            line += f" (best single run on the same test set: {best:.4f})"
        console.print(f"[bold green]{line}[/]")
    elif sub.error:
        raise ToolkitError(f"submission {sub.ref} failed: {sub.error}")


def show_retrying(failed, named: bool) -> None:
    """kpush retry: what it retries, and why each run ended."""
    from .views import cause

    if not named:
        console.print(f"no runs named: retrying every failed run ({len(failed)}); name some to retry only those")
    for run in failed:
        console.print(f"retrying {run.slug} (version {run.version} ended {run.status.value}: "
                      f"{escape(cause(run.failure_message) or 'no message')})")


def show_members(members, weights: Optional[list[float]], steps: list[dict]) -> None:
    """The ensemble's members with their weights, after greedy selection's steps (if it ran)."""
    for number, step in enumerate(steps, 1):
        console.print(f"greedy step {number}: + {step['added']}  valid error {step['valid_error']:.4f}  "
                      f"log loss {step['valid_nll']:.4f}")
    console.print("members: " + ", ".join(f"{m.slug} (weight {w:g})" for m, w in
                                          zip(members, weights or [1.0] * len(members))))
