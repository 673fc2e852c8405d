"""ksubmit: run the ensemble kernel over chosen runs (rendered by kernel.py; its members' dataset uploaded first),
submit its file (or, in a code competition, the kernel), wait for the score."""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.backends.base import check_allowance
from toolkit.core.errors import BackendError, EnsembleError
from toolkit.core.poll import wait
from toolkit.core.status import Status, SubmissionStatus
from toolkit.ensembles.kernel import ensemble_slug, render_ensemble
from toolkit.kernel.contract import metric
from toolkit.kernel.recipes import Recipe
from toolkit.project import Project
from toolkit.registry.records import Run, Submission
from toolkit.runs.datasets import publish_all
from toolkit.runs.lookup import competitions
from toolkit.runs.outputs.fetch import ENSEMBLE_OUTPUTS, fetch_missing
from toolkit.runs.outputs.loaded import Outputs
from toolkit.runs.schedule import push_run
from toolkit.runs.watch.wait import wait_for
from toolkit.specs.ensemble import EnsembleSpec


@dataclass(frozen=True)
class EnsembleResult:
    run: Run
    members: list[Run]
    weights: list[float]
    submission: Submission
    resubmitted: bool = True  # False when an earlier submission of this same ensemble was reused


def choose_competition(project: Project) -> str:
    """--competition, else the one competition of the recorded runs; several: the user picks."""
    found = competitions(project)
    if len(found) > 1:
        raise EnsembleError(f"runs of {len(found)} competitions are recorded: {', '.join(found)}",
                            "pick one with --competition NAME")
    return found[0]


def check_scorable(project: Project, competition: str, recipe: Recipe | None = None) -> None:
    """A code competition whose data ships `kaggle_evaluation/` scores its rerun through an inference server
    that the notebook must start (`inference_server.serve()` when KAGGLE_IS_COMPETITION_RERUN is set, as the
    competitions' own starter notebooks do); the shipped ensemble kernel writes a submission.csv, which such a
    competition never reads, so only a template of the user's that serves will do. Said before a kernel is
    pushed or a submission spent."""
    serves = recipe is not None and ".serve()" in recipe.path.read_text()
    if project.config.code_competition and not serves and project.backend.scored_by_server(competition):
        raise EnsembleError(f"{competition} is scored by an inference server (its data holds kaggle_evaluation/), "
                            "not by the submission.csv the ensemble kernel writes",
                            "its notebook must call inference_server.serve() when KAGGLE_IS_COMPETITION_RERUN is "
                            "set: copy the example --template inference_server into templates/ and fill it in "
                            "(docs/ensembles.md, Code competitions)")


def run_ensemble(project: Project, competition: str, members: list[Run], weights: list[float] | None,
                 message: str, outputs: Outputs, on_update=None, force: bool = False, predict: bool = False,
                 recipe: Recipe | None = None, on_upload=None, on_published=None) -> EnsembleResult:
    """`predict` (always on for code competitions): the ensemble kernel predicts with the members' models on
    the test images it finds, instead of averaging their stored predictions. `recipe`: the user's ensemble
    template (which may extend ensemble.py.j2). `on_upload(text)` hears how the upload of the members' dataset
    goes (when members trained elsewhere), `on_published(published)` that it is ready."""
    if weights is not None and len(weights) != len(members):
        raise EnsembleError(f"{len(weights)} weights for {len(members)} members", "give one weight per member")
    run = _ensemble_run(project, competition, members, weights, predict or project.config.code_competition, recipe,
                        outputs)
    if run.status == Status.NEW:  # a new ensemble will be submitted: not when the competition takes none today
        check_allowance(project.backend, competition)
        for published in publish_all(project, [project.config.kernels_dir / run.slug], on_upload or _ignore):
            (on_published or _ignore)(published)
        push_run(project, run)
    run = next(r for r in wait_for(project, competition, on_update, slugs={run.slug}) if r.id == run.id)
    if run.status != Status.COMPLETE:
        raise BackendError(f"ensemble kernel {run.slug} ended {run.status.value}: {run.failure_message}")
    run = fetch_missing(project, run, names=ENSEMBLE_OUTPUTS)  # never downloaded, or outputs/ deleted since
    submission, sent = _submit(project, competition, run, members, weights or [1.0] * len(members), message, force)
    return EnsembleResult(run, members, weights or [1.0] * len(members), submission, sent)


def _ignore(_: object) -> None:
    pass


def _ensemble_run(project: Project, competition: str, members: list[Run], weights: list[float] | None,
                  predict: bool, recipe: Recipe | None, outputs: Outputs) -> Run:
    """Reuse the stored ensemble run for the same members, or render and record a new one."""
    slug = ensemble_slug(competition, members, weights, predict, recipe, project.config.backend)
    existing = project.store.latest(slug, project.config.backend)
    if existing and existing.status not in (Status.ERROR, Status.CANCEL_ACKNOWLEDGED):  # else rendered and run again
        return existing
    render_ensemble(project, competition, members, weights, predict, recipe, outputs)
    if existing:
        return project.store.requeue(existing.id)
    spec = EnsembleSpec(competition, [f"{m.slug}/{m.version}" for m in members], weights, predict,
                        recipe.name if recipe else "")
    return project.store.add_run(slug, "ensemble", project.config.backend, competition, slug.rsplit("-", 1)[1],
                                 spec.to_dict())


def rerun_estimate(members: list[Run]) -> tuple[float, int] | None:
    """(seconds, test images) a predicting ensemble needs for the public test set, from each member's recorded
    TTA time per image; None when a member has no such record (trained before it was measured)."""
    per_image = [metric(m.metrics, "tta_seconds_per_image") for m in members]
    sizes = [metric(m.metrics, "n_test") for m in members]
    if not members or None in per_image or None in sizes:
        return None
    return sum(per_image) * max(sizes), max(sizes)


def _submit(project: Project, competition: str, run: Run, members: list[Run], weights: list[float],
            message: str, force: bool = False) -> tuple[Submission, bool]:
    """Submit the ensemble's file (or kernel) once: a rerun reuses a submission that reached the backend.
    Returns the submission and whether this call sent (or recovered) it rather than reusing an earlier one."""
    store, backend = project.store, project.backend
    description = f"{message} ({run.slug} v{run.version})"  # the same on a rerun, so it can be found again
    previous = [s for s in store.submissions(competition) if s.ensemble_run_id == run.id]
    sub = next((s for s in reversed(previous) if s.ref), None)
    if sub is not None and not force:
        return _await_score(project, competition, sub), False
    sub = next((s for s in reversed(previous) if not s.ref), None)
    found = None
    if sub is not None:  # an earlier submit was cut off: it may have reached the backend
        found = backend.find_submission(competition, description, sub.created_at)
    if found is None:
        check_allowance(project.backend, competition)
    if sub is None:
        sub = store.add_submission(project.config.backend, competition, run.id, [m.slug for m in members], weights)
    file = project.run_folder(run) / "submission.csv"
    if found is None and project.config.code_competition:
        found = backend.submit(competition, file, description, slug=run.slug, version=run.version)
    elif found is None:
        found = backend.submit(competition, file, description)
    sub = store.update_submission(sub.id, file=project.kept(file), ref=found.ref, status=found.status,
                                  score=found.score, error=found.error)
    return _await_score(project, competition, sub), True


def _await_score(project: Project, competition: str, sub: Submission) -> Submission:
    if sub.status != SubmissionStatus.PENDING:
        return sub
    initial, maximum = project.poll_intervals
    result = wait(lambda: project.backend.submission(competition, sub.ref),
                  lambda r: r.status != SubmissionStatus.PENDING,
                  timeout_s=project.config.wait_timeout_s, initial_s=initial, max_s=maximum)
    return project.store.update_submission(sub.id, status=result.status, score=result.score, error=result.error)
