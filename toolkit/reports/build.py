"""Gathering a competition's report from what is on disk: each run's result row and metrics, its validation
predictions from the downloaded tta.pkl (loaded as data only), the groups of runs validated on the same images,
and the submissions with the best single run's score on the same test set."""

from __future__ import annotations

from dataclasses import dataclass, field

from toolkit.kernel.contract import metric
from toolkit.reports import figures


@dataclass(frozen=True)
class RunSection:
    slug: str
    arch: str
    status: str
    matrix: figures.Confusion | None = None
    classes: list[figures.ClassError] = field(default_factory=list)
    confused: list[tuple[str, str, int]] = field(default_factory=list)
    missing: str = ""  # why there is no matrix (no validation predictions, not finished, ...)


@dataclass(frozen=True)
class SubmissionLine:
    members: list[str]
    weights: list[float]
    status: str
    score: float | None
    best_single: float | None  # the best member's own test accuracy, where the local leaderboard knows it
    ref: str


@dataclass(frozen=True)
class Report:
    competition: str
    rows: list  # runs.results.ResultRow, best TTA error first
    curves: list[figures.Curve]
    sections: list[RunSection]
    gains: list[figures.Gain]
    submissions: list[SubmissionLine]


def gather(competition: str, runs: list, rows: list, submissions: list, outputs) -> Report:
    """The report of `runs` (registry records, training kind), their result rows, the submissions, and their
    outputs as the command read them (runs.loaded.Outputs)."""
    validation = {r.slug: _validation(outputs.of(r)) for r in runs}
    sections = [_section(outputs.current(r), validation[r.slug]) for r in runs]
    curves = [c for r in runs if (c := figures.curve(r.slug, metric(r.metrics, "epochs") or [])) is not None]
    accuracy = {row.slug: row.test_accuracy for row in rows}
    lines = [SubmissionLine(s.members, s.weights, str(s.status), s.score,
                            max((accuracy[m] for m in s.members if accuracy.get(m) is not None), default=None),
                            s.ref) for s in submissions]
    return Report(competition, rows, curves, sections, _gains(validation), lines)


def for_project(project, competition: str, runs: list, rows: list, outputs) -> Report:
    """The report of a project's training `runs` of `competition` (their `rows` made), with its submissions."""
    return gather(competition, runs, rows, project.store.submissions(competition), outputs)


def per_class_errors(report: Report) -> dict[str, dict[str, float]]:
    """For `--format json`: each run's validation error per class."""
    return {s.slug: {c.label: c.error for c in s.classes} for s in report.sections if s.classes}


def _validation(outputs) -> dict | None:
    """A run's validation predictions (from its RunOutputs), or None where it has no outputs here."""
    if outputs is None:
        return None
    if outputs.validation is None:
        return {"missing": True}
    return {"outputs": outputs, "probs": outputs.validation.probs.numpy(), "files": outputs.validation.files,
            "vocab": outputs.vocab, "targets": outputs.validation.targets}


def _section(run, validation: dict | None) -> RunSection:
    head = dict(slug=run.slug, arch=run.spec.arch, status=run.status.value)
    if run.status.value != "COMPLETE":
        return RunSection(**head, missing=f"no validation predictions: the run is {run.status.value}")
    if validation is None:
        return RunSection(**head, missing="no validation predictions: its outputs are not on this machine "
                                          "(kpull outputs downloads them)")
    if validation.get("missing"):
        return RunSection(**head, missing="no validation predictions: its tta.pkl has no valid_probs, "
                                          "valid_targets and valid_files (an older run, or a template that did "
                                          "not save them)")
    matrix = figures.confusion(validation["probs"], validation["targets"], validation["vocab"])
    return RunSection(**head, matrix=matrix, classes=figures.per_class(matrix), confused=figures.most_confused(matrix))


def _gains(validation: dict[str, dict | None]) -> list[figures.Gain]:
    """One Gain per group of two or more runs validated on the same images with the same classes."""
    groups: dict[tuple, list[str]] = {}
    for slug, data in validation.items():
        if data and not data.get("missing"):
            groups.setdefault((tuple(sorted(data["files"])), tuple(sorted(data["vocab"]))), []).append(slug)
    gains = []
    for (files, vocab), slugs in groups.items():
        if len(slugs) < 2:
            continue
        probs, targets = zip(*(_aligned(validation[s], list(files), list(vocab)) for s in slugs))
        gains.append(figures.gain(slugs, list(probs), targets[0], list(vocab)))
    return gains


def _aligned(data: dict, files: list[str], vocab: list[str]):
    """One run's probabilities and targets, rows in `files` order and columns in `vocab` order."""
    probs, targets = data["outputs"].validation_on(files, vocab)
    return probs.numpy(), targets
