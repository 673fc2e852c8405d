"""The report's figures as plain data, computed from what training kernels store: learning curves from each
run's per-epoch metrics, and from its validation TTA predictions a confusion matrix, per-class error and the
class pairs it confuses most (as fastai's ClassificationInterpretation.most_confused reports them); for runs
validated on the same images, what averaging them gains over the best of them. Nothing here draws."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from toolkit.kernel.contract import EPOCH_KEYS, metric

COLLAPSE_OVER = 20  # classes; a larger matrix shows only the most confused of them


@dataclass(frozen=True)
class Curve:
    """One run's per-epoch numbers, epochs counted from 1 (a fine-tune's frozen epoch is epoch 0)."""

    slug: str
    epochs: list[int]
    train_loss: list[float]
    valid_loss: list[float]
    error_rate: list[float]


@dataclass(frozen=True)
class Confusion:
    """Rows: the true class; columns: the predicted one (fastai's layout)."""

    classes: list[str]
    counts: list[list[int]]
    shown: list[str]  # the classes the drawn matrix keeps (all, or the most confused when there are many)

    @property
    def collapsed(self) -> bool:
        return len(self.shown) < len(self.classes)


@dataclass(frozen=True)
class ClassError:
    label: str
    images: int
    wrong: int

    @property
    def error(self) -> float:
        return self.wrong / self.images if self.images else 0.0


@dataclass(frozen=True)
class Gain:
    """The average of runs validated on the same images against the best of them."""

    members: list[str]
    best: str
    best_error: float
    average_error: float
    fixed: list[str] = field(default_factory=list)  # classes with fewer errors in the average
    broken: list[str] = field(default_factory=list)  # classes with more


def curve(slug: str, rows: list) -> Curve | None:
    """From metrics.json's `epochs` rows (phase, train_loss, valid_loss, error_rate); None without any."""
    rows = [(metric(r, "train_loss", EPOCH_KEYS), metric(r, "valid_loss", EPOCH_KEYS),
             metric(r, "error_rate", EPOCH_KEYS), metric(r, "phase", EPOCH_KEYS)) for r in rows if isinstance(r, dict)]
    rows = [r for r in rows if all(_number(v) for v in r[:3])]
    if not rows:
        return None
    start = 0 if rows[0][3] == "frozen" else 1
    return Curve(slug, list(range(start, start + len(rows))), [float(r[0]) for r in rows],
                 [float(r[1]) for r in rows], [float(r[2]) for r in rows])


def confusion(probs, targets, vocab: list[str], keep: int = COLLAPSE_OVER) -> Confusion:
    """The confusion matrix of argmax predictions; more than `keep` classes show the `keep` most confused."""
    predicted, actual = np.asarray(probs).argmax(axis=1), np.asarray(targets).astype(int)
    size = len(vocab)
    counts = np.zeros((size, size), dtype=int)
    np.add.at(counts, (actual, predicted), 1)
    return Confusion(list(vocab), counts.tolist(), _most_confused_classes(counts, list(vocab), keep))


def _most_confused_classes(counts: np.ndarray, vocab: list[str], keep: int) -> list[str]:
    if len(vocab) <= keep:
        return list(vocab)
    off = counts - np.diag(np.diag(counts))
    involvement = off.sum(axis=0) + off.sum(axis=1)  # mistakes made on a class plus mistakes into it
    order = sorted(range(len(vocab)), key=lambda i: (-involvement[i], i))[:keep]
    return [vocab[i] for i in sorted(order)]


def per_class(matrix: Confusion) -> list[ClassError]:
    """Each class's validation images and how many of them were predicted as another class."""
    return [ClassError(label, sum(row), sum(row) - row[i]) for i, (label, row) in
            enumerate(zip(matrix.classes, matrix.counts))]


def most_confused(matrix: Confusion, min_val: int = 1) -> list[tuple[str, str, int]]:
    """(actual, predicted, count) for every mistake seen at least `min_val` times, most frequent first, in
    fastai's order (row by row, then a stable sort on the count)."""
    pairs = [(matrix.classes[i], matrix.classes[j], count) for i, row in enumerate(matrix.counts)
             for j, count in enumerate(row) if i != j and count >= min_val]
    return sorted(pairs, key=lambda p: p[2], reverse=True)


def gain(slugs: list[str], probs: list, targets, vocab: list[str]) -> Gain:
    """The plain average of aligned validation probabilities (same images, same class order) against its
    best member, and which classes the average gets right more or less often."""
    targets = np.asarray(targets).astype(int)
    stacked = [np.asarray(p, dtype=float) for p in probs]
    errors = [_error(p, targets) for p in stacked]
    best = int(np.argmin(errors))
    average = np.mean(stacked, axis=0)
    wrong_best = _wrong_per_class(stacked[best], targets, len(vocab))
    wrong_average = _wrong_per_class(average, targets, len(vocab))
    return Gain(list(slugs), slugs[best], errors[best], _error(average, targets),
                [vocab[i] for i in range(len(vocab)) if wrong_average[i] < wrong_best[i]],
                [vocab[i] for i in range(len(vocab)) if wrong_average[i] > wrong_best[i]])


def _error(probs: np.ndarray, targets: np.ndarray) -> float:
    return float((probs.argmax(axis=1) != targets).mean()) if len(targets) else 0.0


def _wrong_per_class(probs: np.ndarray, targets: np.ndarray, classes: int) -> np.ndarray:
    wrong = probs.argmax(axis=1) != targets
    return np.bincount(targets[wrong], minlength=classes)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
