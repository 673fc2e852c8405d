"""ksubmit: `ksubmit ensemble` chooses members, pushes the ensemble kernel over them, waits, submits what it
wrote (or, in a code competition, the kernel itself) and shows the score."""

from __future__ import annotations

from typing import Optional

import typer

from toolkit.cli.common import BackendOpt, CompetitionOpt, app, live, open_project
from toolkit.cli.console import errors, note
from toolkit.core.errors import ToolkitError

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
):
    """Push the ensemble kernel over finished runs, wait, submit its submission.csv and print the score."""
    from toolkit.cli.report import show_ensemble, show_members, show_rerun_estimate
    from toolkit.ensembles import submit
    from toolkit.ensembles.members import choose, parse_weights
    from toolkit.kernel import recipes
    from toolkit.runs.results import result_rows
    from toolkit.specs.spec import check_template_name

    project = open_project(backend=backend, competition=competition, code_competition=code_competition)
    comp = submit.choose_competition(project)
    recipe = recipes.find(project.config.templates_dir, check_template_name(template)) if template else None
    submit.check_scorable(project, comp, recipe)
    parsed = parse_weights(weights)  # a mistyped --weights is told before the members are looked up
    candidates = submit.choose_members(project, comp, runs)
    if top is not None and top > len(candidates) > 0:
        note(f"--top {top}: only {len(candidates)} finished run{'s' if len(candidates) > 1 else ''} of {comp} "
             f"to choose from; using {'it' if len(candidates) == 1 else 'all of them'}")
    members, parsed, steps = choose(candidates, top, select, parsed)
    show_members(members, parsed, steps)
    predict = predict or project.config.code_competition  # a code competition's rerun predicts
    if predict:
        show_rerun_estimate(submit.rerun_estimate(members), len(members), project.config.rerun_limit_h)
    with live("Ensemble kernel") as update:
        result = submit.run_ensemble(project, comp, members, parsed, message, update, force, predict, recipe)
    solution = project.backend_type.solution(project.config, comp)
    show_ensemble(result_rows(members, solution), result, rerun=project.config.code_competition)
    sub = result.submission
    if sub.score is None and sub.error:
        raise ToolkitError(f"submission {sub.ref} failed: {sub.error}")
    _rewrite_report(project, comp, solution)


def _rewrite_report(project, comp: str, solution) -> None:
    """The competition's report again, now with this submission (kpull outputs writes it first)."""
    from toolkit.reports import build, page
    from toolkit.runs.results import result_rows

    runs = [r for r in project.store.runs(backend=project.config.backend, competition=comp, kind="train")]
    path = page.write(build.for_project(project, comp, runs, result_rows(runs, solution)),
                      page.report_path(project.config.outputs_dir, comp))
    errors.print(f"report: {path.relative_to(project.config.project_dir)}")
