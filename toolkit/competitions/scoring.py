"""Local scoring against a competition's hidden solution.csv (the local leaderboard)."""

from __future__ import annotations

import csv
from pathlib import Path


def read_labels(path: Path) -> dict[str, str]:
    with open(path, newline="") as fh:
        return {r[0]: r[1] for r in list(csv.reader(fh))[1:] if len(r) >= 2}


def probs_accuracy(files: list[str], vocab: list[str], probs, solution: Path) -> float:
    """Accuracy of one run's own test predictions (argmax), for comparing runs with the ensemble."""
    truth = read_labels(solution)
    predicted = probs.argmax(dim=1).tolist()
    hits = sum(truth.get(f) == vocab[i] for f, i in zip(files, predicted))
    return hits / len(truth) if truth else 0.0


def accuracy(submission_csv: Path, solution_csv: Path) -> float:
    """Share of ids whose label matches the solution (the local leaderboard's metric)."""
    from toolkit.core.errors import EnsembleError

    submitted, truth = read_labels(submission_csv), read_labels(solution_csv)
    if set(submitted) != set(truth):
        raise EnsembleError(f"{Path(submission_csv).name} does not list exactly the test ids "
                            f"({len(set(truth) - set(submitted))} missing, {len(set(submitted) - set(truth))} unknown)")
    return sum(submitted[k] == v for k, v in truth.items()) / len(truth)
