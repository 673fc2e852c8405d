"""ksubmit: `ksubmit ensemble` runs its flow (toolkit/flows/ensemble.py): members chosen, the ensemble kernel
pushed over them and waited for, what it wrote (or, in a code competition, the kernel itself) submitted, and the
score shown."""

from __future__ import annotations

from typing import Optional

import typer

from toolkit.cli.common import BackendOpt, CompetitionOpt, app, open_project
from toolkit.cli.show import Show

submit_app = app("Ensemble finished runs and submit.")


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
    template: Optional[str] = typer.Option(None, "--template", "-t", help="Your ensemble template: templates/NAME.py.j2, which may extend ensemble.py.j2 (default: the shipped one)."),
    force: bool = typer.Option(False, "--force", help="Submit again even if this ensemble was already submitted."),
    sources: Optional[list[str]] = typer.Option(None, "--from", help="Members only from runs trained on this backend (repeatable; default on Kaggle: every backend's finished runs whose outputs are here)."),
    public: Optional[bool] = typer.Option(None, "--public/--private", help="The ensemble kernel's and members' dataset's visibility (default private)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Render the ensemble kernel and lay out the members' dataset only; upload, push and submit nothing."),
):
    """Push the ensemble kernel over finished runs, wait, submit its submission.csv and print the score."""
    from toolkit.flows.ensemble import Choice, ensemble

    project = open_project(backend=backend, competition=competition, code_competition=code_competition,
                           public=public, ready=not dry_run, offline=dry_run)
    with Show() as show:
        ensemble(project, Choice(runs, weights, top, select, message, predict, template, force, sources, dry_run),
                 show)
