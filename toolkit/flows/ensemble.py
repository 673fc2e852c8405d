"""ksubmit ensemble's flow: choose the competition and the members (their outputs read once; on Kaggle, runs trained
on any backend: ensembles/candidates.py), weigh them, render the ensemble kernel (and the dataset of the members
trained elsewhere), upload that dataset once, run the kernel, submit what it wrote (or, in a code competition, the
kernel itself) once, wait for the score, and write the competition's report again with the submission in it. A dry
run renders and lays out, and contacts nothing."""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.core.errors import ToolkitError
from toolkit.flows.events import (DatasetReady, Emit, Ensembled, Members, Note, Rendered, RerunEstimate, Uploading,
                                  Waiting, ignore)
from toolkit.project import Project


@dataclass(frozen=True)
class Choice:
    """Which runs, weighed how, and how the ensemble kernel is made (ksubmit ensemble's options)."""

    runs: list[str] | None = None
    weights: str | None = None
    top: int | None = None
    select: str | None = None
    message: str = "toolkit ensemble"
    predict: bool = False
    template: str | None = None
    force: bool = False
    sources: list[str] | None = None  # --from: the backends whose runs may be members (default: candidates.py)
    dry_run: bool = False


def ensemble(project: Project, choice: Choice, emit: Emit = ignore):
    """Push the ensemble kernel over the chosen runs, wait, submit, and wait for the score. None for a dry run."""
    from toolkit.ensembles import submit
    from toolkit.ensembles.candidates import choose_members
    from toolkit.ensembles.members import choose, parse_weights
    from toolkit.flows.pull import report
    from toolkit.kernel import recipes
    from toolkit.runs.outputs.loaded import Outputs
    from toolkit.runs.outputs.results import result_rows
    from toolkit.specs.spec import check_template_name

    comp = submit.choose_competition(project)
    recipe = recipes.find(project.config.templates_dir, check_template_name(choice.template)) \
        if choice.template else None
    if not choice.dry_run:  # asks the backend about the competition's files
        submit.check_scorable(project, comp, recipe)
    weights = parse_weights(choice.weights)  # a mistyped --weights is told before the members are looked up
    read = Outputs(project)
    candidates = choose_members(project, comp, read, choice.runs, choice.sources, fetch=not choice.dry_run)
    if choice.top is not None and choice.top > len(candidates) > 0:
        emit(Note(f"--top {choice.top}: only {len(candidates)} finished run{'s' if len(candidates) > 1 else ''} of "
                  f"{comp} to choose from; using {'it' if len(candidates) == 1 else 'all of them'}"))
    members, weights, steps = choose(candidates, choice.top, choice.select, weights, read)
    emit(Members(members, weights, steps, project.config.backend))
    predict = choice.predict or project.config.code_competition  # a code competition's rerun predicts
    if predict:
        emit(RerunEstimate(submit.rerun_estimate(members), len(members), project.config.rerun_limit_h))
    if choice.dry_run:
        return _dry_run(project, comp, members, weights, predict, recipe, read, emit)
    result = submit.run_ensemble(project, comp, members, weights, choice.message, read,
                                 lambda polled, progress: emit(Waiting("Ensemble kernel", polled, progress)),
                                 choice.force, predict, recipe, lambda text: emit(Uploading(text)),
                                 lambda published: emit(DatasetReady.of(published)))
    solution = project.backend_type.solution(project.config, comp)
    emit(Ensembled(result_rows(members, read, solution), result, project.config.code_competition))
    sub = result.submission
    if sub.score is None and sub.error:
        raise ToolkitError(f"submission {sub.ref} failed: {sub.error}")
    report(project, comp, read, emit)
    return result


def _dry_run(project: Project, comp: str, members: list, weights, predict: bool, recipe, read, emit: Emit) -> None:
    """The ensemble kernel rendered and the members' dataset laid out, as a push would; nothing recorded,
    uploaded or pushed."""
    from toolkit.ensembles.kernel import render_ensemble

    rendered = render_ensemble(project, comp, members, weights, predict, recipe, read)
    for folder in (rendered.folder, rendered.dataset):
        if folder is not None:
            emit(Rendered(folder.relative_to(project.config.project_dir)))
