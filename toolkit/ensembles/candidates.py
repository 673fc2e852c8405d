"""Which finished training runs an ensemble may take, and from which backends.

An ensemble kernel finds a member trained on its own backend in that kernel's outputs (a kernel source). A Kaggle
kernel can also attach a private dataset of the user's, so a Kaggle ensemble takes runs trained anywhere: by default
every finished run of the competition whose outputs are on this machine (`kpull outputs` brought them home), whatever
backend trained it, besides Kaggle's own (fetched again when missing); `--from BACKEND` (repeatable) keeps the runs
of those backends only. Each member is shown with its backend. The same run (the same spec, so the same slug)
finished on two backends is ambiguous: refused in one line naming the `--from` that settles it. The local and ray
backends' ensembles take their own runs only: their kernels mount that backend's outputs."""

from __future__ import annotations

from toolkit.core.config import BACKENDS
from toolkit.core.errors import ConfigError, EnsembleError, RunNotFound
from toolkit.core.status import Status
from toolkit.project import Project
from toolkit.registry.records import Run
from toolkit.runs.lookup import match_runs
from toolkit.runs.outputs.fetch import fetch_missing, has_outputs
from toolkit.runs.outputs.loaded import Outputs


def backends_from(project: Project, sources: list[str] | None) -> list[str]:
    """The backends whose runs may be members: `--from`'s, else every one where the ensemble's backend attaches
    runs from elsewhere (Kaggle), else its own."""
    own = project.config.backend
    for name in sources or []:
        if name not in BACKENDS:
            raise ConfigError(f"--from {name}: no such backend", f"one of {', '.join(BACKENDS)}")
    if not project.backend_type.uploads_datasets and set(sources or []) - {own}:
        other = sorted(set(sources) - {own})[0]
        raise EnsembleError(f"a {own} ensemble takes runs trained on {own} only, not on {other} (--from {other})",
                            "ensemble them with --backend kaggle: its kernel attaches runs trained elsewhere as a "
                            "private dataset")
    if sources:
        return list(dict.fromkeys(sources))
    return list(BACKENDS) if project.backend_type.uploads_datasets else [own]


def choose_members(project: Project, competition: str, outputs: Outputs, names: list[str] | None = None,
                   sources: list[str] | None = None, fetch: bool = True) -> list[Run]:
    """Completed training runs of the backends `backends_from` allows; `names` picks by slug, spec name or arch.
    A run of the ensemble's own backend whose outputs are missing is fetched again (unless not `fetch`: a dry run
    contacts nothing); another backend's run counts only with its outputs here."""
    own, allowed = project.config.backend, backends_from(project, sources)
    runs = [r for r in project.store.runs(competition=competition, kind="train") if r.backend in allowed]
    done = [r for r in runs if r.status == Status.COMPLETE]
    here = [r for r in done if (r.backend == own and fetch) or has_outputs(project, r)]
    if not names and not here:
        _none_finished(competition, runs, done)
    chosen = here if not names else match_runs(done, names, lambda name: RunNotFound(
        f"no finished run matches '{name}'", "kpull outputs lists the runs that can be ensembled"))
    _check_unambiguous(chosen)
    for run in chosen:
        if run not in here:
            raise EnsembleError(f"{run.slug} (trained on {run.backend}) has no outputs on this machine",
                                f"kpull outputs --backend {run.backend} brings them")
    fetched = [fetch_missing(project, r, outputs) if r.backend == own and fetch else r for r in chosen]
    refused = [r for r in fetched if outputs.of(r) is None]
    if refused:  # a member whose outputs were refused cannot be ensembled: said before anything is pushed
        raise EnsembleError(f"{refused[0].slug} cannot be a member: {outputs.current(refused[0]).failure_message}",
                            "leave it out with --run, or set it aside (kpush aside RUN)")
    return fetched


def _none_finished(competition: str, runs: list[Run], done: list[Run]) -> None:
    """Why there is nothing to ensemble, in one line."""
    if done:
        where = sorted({r.backend for r in done})
        raise EnsembleError(f"no finished run of {competition} has its outputs on this machine",
                            f"kpull outputs --backend {where[0]} brings them")
    unfinished = sum(not r.status.terminal for r in runs)
    if unfinished:
        raise EnsembleError(f"no finished runs for {competition} yet ({unfinished} still to finish)",
                            "kpull outputs waits for them")
    raise EnsembleError(f"no finished runs for {competition}",
                        "kpush train --arch NAME trains one" if not runs else "kstatus shows why they failed")


def _check_unambiguous(chosen: list[Run]) -> None:
    """One run per slug: the same spec finished on two backends is two models of one name."""
    seen: dict[str, Run] = {}
    for run in chosen:
        other = seen.setdefault(run.slug, run)
        if other.backend != run.backend:
            raise EnsembleError(f"{run.slug} finished on both {other.backend} and {run.backend}",
                                f"keep one with --from {other.backend} (or --from {run.backend})")
