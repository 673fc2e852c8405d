"""What commands print besides their tables: notes, failures, results, estimates, quota, the ensemble's
score. Every function here takes what it shows (a flow's event's values); none asks a backend or reads a file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from rich.markup import escape

from toolkit.cli.console import console, errors, note
from toolkit.kernel.runtime.failures import cause


def checked(kernels: int, seconds: float) -> None:
    console.print(f"checked {kernels} kernel{'s' if kernels > 1 else ''} in {seconds:.0f} s: each trained an epoch on "
                  "a miniature of its competition and wrote every output the toolkit reads")


def durations(durations: list, long_min: float) -> None:
    """Before runs start on this machine: how long each will take here (a total for many), and the ways out
    when one is long."""
    from toolkit.runs.costs.local_duration import describe, total_line

    if len(durations) <= 3:
        for slug, duration in durations:
            console.print(describe(slug, duration), highlight=False)
    elif durations:
        console.print(total_line(durations), highlight=False)
    if any(d.minutes is None or d.minutes >= long_min for _, d in durations):
        note("long on this machine: `--backend kaggle` runs it on Kaggle's GPUs instead; "
             "`kstop SLUG` stops a local run")


def failure(run, log_tail: str) -> None:
    """The cause in one line, then the end of the log (which ends at that cause)."""
    errors.print(f"[red]{run.slug} failed:[/] {escape(cause(run.failure_message) or 'no message')}")
    if log_tail:
        errors.print(log_tail, markup=False, highlight=False)


def results(tables: list[tuple[str, list, Optional[Path], Path]], fmt: str, project_dir: Path,
            extra: dict | None = None) -> None:
    """Per competition (name, result rows, plot written or None, report written): a table, or every row
    exported as `fmt` (`extra`: more keys per run for json, such as its per-class errors)."""
    from toolkit.cli.tables import results_table
    from toolkit.runs.outputs.results import export

    for comp, rows, plot, report in tables:
        if fmt == "table":
            console.print(results_table(rows, title=f"{comp}: results, best TTA error first"))
        if plot:
            errors.print(f"learning curves: {plot.relative_to(project_dir)}")
        errors.print(f"report: {report.relative_to(project_dir)} (curves, confusion matrices, per-class error, "
                     "what the ensemble gained; opens from disk)")
    if fmt != "table":
        sys.stdout.write(export([row for _, rows, _, _ in tables for row in rows], fmt, extra))


def quota_plan(quota_plan) -> None:
    """Before a sweep is pushed: the quota, and which sessions it pushes now and which wait for its refresh."""
    from toolkit.backends.base import utc_minute

    quota(quota_plan.quota)
    later = quota_plan.later
    if quota_plan.quota is None or not quota_plan.sessions:
        return
    if quota_plan.forced:
        return console.print(f"--force: all {len(quota_plan.sessions)} sessions pushed now, whatever the quota")
    if not later:
        return console.print(f"all {len(quota_plan.sessions)} sessions fit this week's quota")
    held = sum(len(s.members) for s in later)
    first = quota_plan.start(later[0])
    console.print(f"{len(quota_plan.this_week)} of {len(quota_plan.sessions)} sessions fit this week's quota; "
                  f"the other {held} runs wait until it refreshes ({utc_minute(first)}), when kstatus or kpull outputs "
                  "pushes them (--force pushes everything now)")


def quota(quota) -> None:
    """On Kaggle: GPU hours used (and reserved) of those allowed, and when they refresh (None: no quota)."""
    if quota is not None:
        reserved = f" + {quota.reserved_hours:.1f} h reserved by running sessions" if quota.reserved_hours else ""
        console.print(f"GPU quota: {quota.used_hours:.1f} h used{reserved} of {quota.allowed_hours:.1f} h "
                      f"({quota.left_hours:.1f} h left), refreshes {quota.refresh or 'weekly'}")


def rerun_estimate(estimate: tuple[float, int] | None, members: int, limit_h: float) -> None:
    """What predicting will cost (a code competition reruns it on the hidden test set), before it starts."""
    if estimate is None:
        return note("no rerun estimate: some members have no recorded TTA timing")
    seconds, images = estimate
    console.print(f"rerun estimate: ~{seconds / 60:.1f} min to predict {images} test images with {members} "
                  f"member(s), from their TTA timings (the hidden test set may be larger); limit {limit_h:g} h")
    if seconds >= 0.8 * limit_h * 3600:
        note(f"the rerun may come near the {limit_h:g} h limit: use fewer members (--top) or smaller images")


def ensembled(rows, result, rerun: bool = False) -> None:
    """The members' results, the submission, and the score beside the best single run's (`rerun`: the score
    comes from a code competition's rerun on the hidden test set, the members' from the public one)."""
    from toolkit.cli.tables import results_table, submission_table

    console.print(results_table(rows, title="Ensemble members"))
    console.print(submission_table([result.submission]))
    sub = result.submission
    if not result.resubmitted:
        note(f"this ensemble was already submitted (ref {sub.ref}); use --force to submit it again")
    if sub.score is not None:
        best = max((r.test_accuracy for r in rows if r.test_accuracy is not None), default=None)
        line = f"ensemble score: {sub.score:.4f}"
        if rerun:
            line += " (the rerun on the hidden test set" + (f"; best single run on the public test set: {best:.4f})"
                                                            if best is not None else ")")
        elif best is not None:
            line += f" (best single run on the same test set: {best:.4f})"
        console.print(f"[bold green]{line}[/]")


def retrying(failed, named: bool) -> None:
    """kpush retry: what it retries, and why each run ended."""
    if not named:
        console.print(f"no runs named: retrying every failed run ({len(failed)}); name some to retry only those")
    for run in failed:
        console.print(f"retrying {run.slug} (version {run.version} ended {run.status.value}: "
                      f"{escape(cause(run.failure_message) or 'no message')})")


def members(members, weights: Optional[list[float]], steps: list[dict], backend: str = "") -> None:
    """The ensemble's members with their weights (and the backend that trained each one not trained on the
    ensemble's), after greedy selection's steps (if it ran)."""
    for number, step in enumerate(steps, 1):
        console.print(f"greedy step {number}: + {step['added']}  valid error {step['valid_error']:.4f}  "
                      f"log loss {step['valid_nll']:.4f}")
    console.print("members: " + ", ".join(
        f"{m.slug} ({f'trained on {m.backend}, ' if backend and m.backend != backend else ''}weight {w:g})"
        for m, w in zip(members, weights or [1.0] * len(members))), highlight=False)


def dataset_ready(ref: str, version: Optional[int], uploaded: bool, files: int, size: int) -> None:
    """A dataset the kernels attach: uploaded now, or unchanged and not uploaded again."""
    shown = f"{ref}" + (f" v{version}" if version else "")
    if uploaded:
        console.print(f"dataset {shown}: uploaded {files} file{'s' if files != 1 else ''} ({size / 2**20:.1f} MB)",
                      highlight=False)
    else:
        console.print(f"dataset {shown}: unchanged, nothing uploaded", highlight=False)
