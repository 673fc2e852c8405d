"""Choosing ensemble members: the K best by TTA error, or greedy forward selection on validation predictions.

Greedy selection (Caruana et al., 2004: "Ensemble selection from libraries of models") adds, one at a time
and with replacement, the run whose addition lowers the validation error of the averaged probabilities
most (ties broken by log loss), and stops when nothing improves. A run picked twice gets weight 2.
It needs every candidate's validation predictions on the *same* images: the runs must share a
validation split (same seed, same valid_files), else the comparison would be meaningless.
"""

from __future__ import annotations

import math

from toolkit.core.errors import EnsembleError
from toolkit.kernel.contract import TTA_FILE, metric
from toolkit.registry.records import Run
from toolkit.runs.outputs.loaded import Outputs, RunOutputs


def choose(runs: list[Run], top: int | None, select: str | None, weights: list[float] | None,
           outputs: Outputs) -> tuple[list[Run], list[float] | None, list[dict]]:
    """Apply --top, then --select greedy, then check --weights: (members, weights, greedy steps)."""
    steps: list[dict] = []
    if top is not None:
        runs = top_k(runs, top)
    if select is not None:
        if select != "greedy":
            raise EnsembleError(f"unknown selection '{select}'", "use --select greedy")
        if weights is not None:
            raise EnsembleError("--weights and --select greedy both set the weights", "use one of them")
        runs, weights, steps = greedy(runs, outputs)
    if weights is not None and len(weights) != len(runs):
        raise EnsembleError(f"{len(weights)} weights for {len(runs)} members", "give one weight per member")
    if weights is not None and not _usable(weights):
        raise EnsembleError(f"weights {weights} must be finite and non-negative with a positive sum")
    return runs, weights, steps


def parse_weights(text: str | None) -> list[float] | None:
    """--weights "1,2": one non-negative number per member, with a positive sum."""
    if not text:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise EnsembleError(f"--weights {text!r} is not a comma-separated list of numbers") from None
    if not _usable(values):
        raise EnsembleError(f"--weights {text!r} must be finite, non-negative numbers with a positive sum",
                            "one per member, e.g. --weights 1,2")
    return values


def _usable(weights: list[float]) -> bool:
    return all(math.isfinite(w) and w >= 0 for w in weights) and sum(weights) > 0  # nan and inf parse as floats


def top_k(runs: list[Run], k: int) -> list[Run]:
    """The k runs with the lowest TTA error on their validation set (runs without one come last)."""
    if k < 1:
        raise EnsembleError(f"--top must be at least 1, not {k}")
    ranked = sorted(runs, key=lambda r: (metric(r.metrics, "tta_error") is None,
                                         metric(r.metrics, "tta_error") or 0.0, r.slug))
    return ranked[:k]


def _validation(run: Run, outputs: Outputs) -> RunOutputs:
    """A candidate's outputs, which greedy selection needs with their validation predictions."""
    found = outputs.of(run)
    if found is None:
        raise EnsembleError(f"{run.slug} cannot be compared: "
                            f"{outputs.current(run).failure_message or 'its outputs are not on this machine'}")
    if found.validation is None:
        raise EnsembleError(f"{run.slug}'s {TTA_FILE} has no validation predictions (valid_probs, valid_targets, "
                            "valid_files)", "greedy selection needs them; retrain with this toolkit version")
    return found


def shared_validation(runs: list[Run], outputs: Outputs):
    """(valid_files sorted, targets as class indices into the sorted vocab, [probs per run aligned to both])."""
    import torch

    seeds = {r.spec.seed for r in runs}
    if len(seeds) != 1 or None in seeds:
        raise EnsembleError(f"greedy selection needs runs with one validation split, but their seeds are "
                            f"{sorted(map(str, seeds))}",
                            "train the candidates with the same seed, or pick members with --run / --top")
    found = [_validation(r, outputs) for r in runs]
    files, vocab = sorted(found[0].validation.files), sorted(found[0].vocab)
    targets, aligned = None, []
    for run, own in zip(runs, found):
        if sorted(own.validation.files) != files or sorted(own.vocab) != vocab:
            raise EnsembleError(f"{run.slug} was validated on different images than {runs[0].slug}",
                                "greedy selection compares runs on one validation split (same data, seed and "
                                "valid_pct)")
        probs, labels = own.validation_on(files, vocab)
        if targets is None:
            targets = torch.tensor(labels)
        elif labels != targets.tolist():
            raise EnsembleError(f"{run.slug} disagrees with {runs[0].slug} on validation labels")
        aligned.append(probs)
    return files, targets, aligned


def _score(probs, targets) -> tuple[float, float]:
    import torch

    error = float((probs.argmax(dim=1) != targets).float().mean())
    nll = float(-torch.log(probs[torch.arange(len(targets)), targets].clamp_min(1e-8)).mean())
    return error, nll


def greedy(runs: list[Run], outputs: Outputs,
           max_steps: int | None = None) -> tuple[list[Run], list[float], list[dict]]:
    """Forward selection with replacement; returns (members, weights, steps) where each step records
    the run added and the ensemble's validation error and log loss after it."""
    if not runs:
        raise EnsembleError("no candidates for greedy selection")
    _, targets, probs = shared_validation(runs, outputs)
    counts = [0] * len(runs)
    total = None
    best = (float("inf"), float("inf"))
    steps: list[dict] = []
    for _ in range(max_steps or 2 * len(runs)):
        n = sum(counts)
        choices = []
        for i, p in enumerate(probs):
            mix = p if total is None else (total + p) / (n + 1)
            choices.append((_score(mix, targets), i))
        score, pick = min(choices)
        if score >= best:
            break
        best = score
        counts[pick] += 1
        # keep the running sum of picked probabilities; the next mix is (sum + candidate) / (n + 1)
        total = probs[pick].clone() if total is None else total + probs[pick]
        steps.append({"added": runs[pick].slug, "valid_error": score[0], "valid_nll": score[1]})
    members = [r for r, c in zip(runs, counts) if c]
    weights = [float(c) for c in counts if c]
    return members, weights, steps
