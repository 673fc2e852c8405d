"""The report's figures as data (toolkit/reports/figures.py), on small hand-made predictions: the confusion
matrix as fastai builds it, most_confused in fastai's order, per-class error, collapsing a large matrix,
learning curves from metrics.json rows, and what an average gains over its best member."""

from __future__ import annotations

from operator import itemgetter

import numpy as np
import pytest
import torch

from toolkit.reports import figures

VOCAB = ["cat", "dog", "owl"]
# true classes, and the probabilities of one run: two dogs seen as cats, one owl as a dog
TARGETS = [0, 0, 1, 1, 1, 2, 2]
PROBS = [[.8, .1, .1], [.6, .3, .1], [.7, .2, .1], [.5, .4, .1], [.1, .8, .1], [.1, .6, .3], [.1, .1, .8]]


def fastai_matrix(probs, targets, n):
    """fastai 2.8's ClassificationInterpretation.confusion_matrix, as its source computes it."""
    x = torch.arange(0, n)
    d, t = torch.tensor(probs).argmax(dim=1), torch.tensor(targets)
    return ((d == x[:, None]) & (t == x[:, None, None])).long().sum(2).numpy()


def test_the_confusion_matrix_is_fastais():
    matrix = figures.confusion(PROBS, TARGETS, VOCAB)
    assert matrix.counts == fastai_matrix(PROBS, TARGETS, 3).tolist() == [[2, 0, 0], [2, 1, 0], [0, 1, 1]]
    assert matrix.shown == VOCAB and not matrix.collapsed


def test_most_confused_is_fastais_order_and_counts():
    matrix = figures.confusion(PROBS, TARGETS, VOCAB)
    cm = fastai_matrix(PROBS, TARGETS, 3)
    np.fill_diagonal(cm, 0)
    expected = sorted([(VOCAB[i], VOCAB[j], cm[i, j]) for i, j in zip(*np.where(cm >= 1))], key=itemgetter(2),
                      reverse=True)
    assert figures.most_confused(matrix) == [(a, p, int(n)) for a, p, n in expected] == \
        [("dog", "cat", 2), ("owl", "dog", 1)]
    assert figures.most_confused(matrix, min_val=2) == [("dog", "cat", 2)]


def test_per_class_error_counts_each_classes_images():
    rows = figures.per_class(figures.confusion(PROBS, TARGETS, VOCAB))
    assert [(r.label, r.images, r.wrong) for r in rows] == [("cat", 2, 0), ("dog", 3, 2), ("owl", 2, 1)]
    assert rows[1].error == pytest.approx(2 / 3)


def test_a_large_matrix_keeps_the_most_confused_classes_and_says_so():
    rng = np.random.default_rng(0)
    vocab = [f"c{i:03d}" for i in range(100)]
    targets = np.repeat(np.arange(100), 5)
    probs = np.eye(100)[targets] + 0.01
    confused = [7, 42, 93]
    for i in confused:  # these classes are mistaken for their neighbour
        rows = np.where(targets == i)[0][:3]
        probs[rows] = np.eye(100)[(i + 1) % 100] + 0.01
    matrix = figures.confusion(probs + rng.uniform(0, 0.001, probs.shape), targets, vocab, keep=20)
    assert matrix.collapsed and len(matrix.shown) == 20 and len(matrix.counts) == 100
    assert {vocab[i] for i in confused} | {vocab[(i + 1) % 100] for i in confused} <= set(matrix.shown)


def test_curves_come_from_metrics_rows_with_the_frozen_epoch_first():
    rows = [{"phase": "frozen", "epoch": 0, "train_loss": 1.0, "valid_loss": 0.9, "error_rate": 0.5},
            {"phase": "train", "epoch": 0, "train_loss": 0.7, "valid_loss": 0.6, "error_rate": 0.3},
            {"phase": "train", "epoch": 1, "train_loss": 0.5, "valid_loss": 0.5, "error_rate": 0.2}]
    c = figures.curve("r", rows)
    assert (c.epochs, c.train_loss, c.error_rate) == ([0, 1, 2], [1.0, 0.7, 0.5], [0.5, 0.3, 0.2])
    assert figures.curve("r", rows[1:]).epochs == [1, 2]
    assert figures.curve("r", [{"phase": "train"}, "junk"]) is None


def test_the_average_gain_names_the_classes_it_fixes_and_breaks():
    other = [[.1, .8, .1], [.9, .05, .05], [.1, .8, .1], [.1, .8, .1], [.1, .2, .7], [.1, .1, .8], [.1, .1, .8]]
    result = figures.gain(["a", "b"], [PROBS, other], TARGETS, VOCAB)
    errors = [float((np.argmax(p, 1) != TARGETS).mean()) for p in (PROBS, other)]
    assert result.best == "b" and result.best_error == pytest.approx(min(errors))
    average = np.mean([PROBS, other], axis=0).argmax(1)
    assert result.average_error == pytest.approx(float((average != TARGETS).mean()))
    # b misses a cat and a dog; the average gets every image right
    assert (result.average_error, result.fixed, result.broken) == (0.0, ["cat", "dog"], [])
    worse = figures.gain(["a", "b"], [other, PROBS], TARGETS, VOCAB)
    assert worse.best == "a" and worse.fixed == ["cat", "dog"]
