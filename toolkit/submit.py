"""ksubmit: render and run the ensemble kernel over chosen runs, submit its file, wait for the score."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from .backends.base import Status
from .collect import ENSEMBLE_OUTPUTS, download, wait_for
from .errors import BackendError, EnsembleError, RunNotFound
from .launch import push_run
from .poll import wait
from .project import Project
from .render import KernelOptions, kernel_metadata, render_ensemble_notebook, write_kernel_folder
from .spec import make_slug
from .store import Run, Submission


@dataclass(frozen=True)
class EnsembleResult:
    run: Run
    members: list[Run]
    weights: list[float]
    submission: Submission


def choose_members(project: Project, competition: str, names: list[str] | None = None) -> list[Run]:
    """Completed training runs with downloaded outputs; `names` picks by slug, spec name or arch."""
    done = [r for r in project.store.runs(backend=project.config.backend, competition=competition, kind="train")
            if r.status == Status.COMPLETE and r.output_dir]
    if not names:
        if not done:
            raise EnsembleError(f"no finished runs with outputs for {competition}",
                                "run kpush train, then kpull outputs")
        return done
    chosen = []
    for name in names:
        match = [r for r in done if name in (r.slug, r.spec.get("name"), r.spec.get("arch"))]
        if not match:
            raise RunNotFound(f"no finished run with outputs matches '{name}'",
                              "kpull outputs lists the runs that can be ensembled")
        chosen.extend(m for m in match if m not in chosen)
    return chosen


def ensemble_slug(competition: str, members: list[Run], weights: list[float] | None) -> str:
    key = json.dumps([competition, [(m.slug, m.version) for m in members], weights])
    return make_slug(f"ensemble {competition}", hashlib.sha256(key.encode()).hexdigest()[:8])


def run_ensemble(project: Project, competition: str, members: list[Run], weights: list[float] | None,
                 message: str, on_update=None) -> EnsembleResult:
    if weights is not None and len(weights) != len(members):
        raise EnsembleError(f"{len(weights)} weights for {len(members)} members", "give one weight per member")
    run = _ensemble_run(project, competition, members, weights)
    if run.status == Status.NEW:
        push_run(project, run)
    run = next(r for r in wait_for(project, competition, on_update, slugs={run.slug}) if r.id == run.id)
    if run.status != Status.COMPLETE:
        raise BackendError(f"ensemble kernel {run.slug} ended {run.status.value}: {run.failure_message}")
    if not run.output_dir:
        run = download(project, run, ENSEMBLE_OUTPUTS)
    submission = _submit(project, competition, run, members, weights or [1.0] * len(members), message)
    return EnsembleResult(run, members, weights or [1.0] * len(members), submission)


def _ensemble_run(project: Project, competition: str, members: list[Run], weights: list[float] | None) -> Run:
    """Reuse the stored ensemble run for the same members, or render and record a new one."""
    slug = ensemble_slug(competition, members, weights)
    existing = project.store.latest(slug, project.config.backend)
    if existing and existing.status != Status.ERROR:
        return existing
    user = project.backend.username
    options = KernelOptions(username=user, gpu=False, internet=False, private=project.config.private,
                            kernel_sources=tuple(f"{user}/{m.slug}/{m.version}" for m in members))
    notebook = render_ensemble_notebook(slug, competition, [m.slug for m in members], weights)
    write_kernel_folder(project.config.kernels_dir / slug, notebook, kernel_metadata(slug, competition, options))
    if existing:
        return project.store.requeue(existing.id)
    spec = {"competition": competition, "members": [f"{m.slug}/{m.version}" for m in members], "weights": weights}
    return project.store.add_run(slug, "ensemble", project.config.backend, competition, slug.rsplit("-", 1)[1], spec)


def _submit(project: Project, competition: str, run: Run, members: list[Run], weights: list[float],
            message: str) -> Submission:
    from pathlib import Path

    store, backend = project.store, project.backend
    sub = store.add_submission(project.config.backend, competition, run.id, [m.slug for m in members], weights)
    file = Path(run.output_dir) / "submission.csv"
    if project.config.code_competition:
        result = backend.submit(competition, file, message, slug=run.slug, version=run.version)
    else:
        result = backend.submit(competition, file, message)
    sub = store.update_submission(sub.id, file=str(file), ref=result.ref, status=result.status,
                                  score=result.score, error=result.error)
    if result.status == "PENDING":
        initial, maximum = project.poll_intervals
        result = wait(lambda: backend.submission(competition, result.ref), lambda r: r.status != "PENDING",
                      timeout_s=project.config.wait_timeout_s, initial_s=initial, max_s=maximum)
        sub = store.update_submission(sub.id, status=result.status, score=result.score, error=result.error)
    return sub
