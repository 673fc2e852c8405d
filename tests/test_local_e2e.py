"""The whole loop on the local backend through the real console scripts, on a tiny competition:
kpush train (one pretrained from the packaged weights, one from scratch) -> kpull outputs -> ksubmit ensemble."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import browser
import pytest

BIN = Path(sys.executable).parent
TINY = ["--item", "Resize(24)", "--batch", "aug_transforms(size=24, do_flip=False)", "--epochs", "1", "--bs", "16"]


def run(command: str, *args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / command), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from toolkit.competitions.demo import build_competition, build_weights

    root = tmp_path_factory.mktemp("project")
    build_competition(root / "competitions", limit=160)
    build_weights(root / "datasets")
    return root


@pytest.mark.e2e
@pytest.mark.slow  # the everyday suite runs this loop in-process (test_flows.py) and each command once
def test_push_pull_ensemble_submit(project):
    env = {**os.environ, "TOOLKIT_POLL_INITIAL_S": "0.5", "TOOLKIT_POLL_MAX_S": "1", "COLUMNS": "200",
           "KAGGLE_KEY": "local-e2e-fake-key-5d4c3b2a"}
    pushed = run("kpush", "train", "--arch", "tf_efficientnet_lite0", "--arch", "resnet18", *TINY,
                 env=env, cwd=project)
    assert pushed.returncode == 0, pushed.stderr
    assert "resnet18: no local pretrained weights, training from scratch" in pushed.stderr

    again = run("kpush", "train", "--arch", "resnet18", *TINY, env=env, cwd=project)
    assert again.returncode == 0 and "skipped" in again.stdout  # same spec: no second version

    pulled = run("kpull", "outputs", "--format", "json", env=env, cwd=project)
    assert pulled.returncode == 0, pulled.stderr
    rows = json.loads(pulled.stdout)
    assert [r["status"] for r in rows] == ["COMPLETE", "COMPLETE"]
    assert rows[0]["tta_error"] <= rows[1]["tta_error"]  # best first
    assert {r["arch"] for r in rows} == {"tf_efficientnet_lite0", "resnet18"}
    assert all(1 < r["output_mb"] < 100 for r in rows)  # the saved model included, far below Kaggle's 20 GB

    submitted = run("ksubmit", "ensemble", env=env, cwd=project)
    assert submitted.returncode == 0, submitted.stderr
    assert "ensemble score:" in submitted.stdout

    db = sqlite3.connect(project / ".toolkit" / "runs.sqlite")
    runs = db.execute("SELECT slug, kind, status, version, output_dir FROM runs ORDER BY id").fetchall()
    assert [(kind, status, version) for _, kind, status, version, _ in runs] == \
        [("train", "COMPLETE", 1), ("train", "COMPLETE", 1), ("ensemble", "COMPLETE", 1)]
    (score,) = db.execute("SELECT score FROM submissions").fetchone()
    assert 0.0 <= score <= 1.0

    # The submission lists exactly the sample submission's ids, in its order, with known labels.
    submission = project / runs[2][4] / "submission.csv"  # the registry keeps paths relative to the project
    sample = project / "competitions" / "digits-demo" / "sample_submission.csv"
    with open(submission) as fh, open(sample) as sh:
        got, expected = list(csv.reader(fh)), list(csv.reader(sh))
    assert [r[0] for r in got] == [r[0] for r in expected]
    vocab = sorted(p.name for p in (project / "competitions" / "digits-demo" / "train_images").iterdir())
    assert {r[1] for r in got[1:]} <= set(vocab)

    # Scored against the hidden labels, which the kernels never saw.
    from toolkit.competitions.scoring import accuracy
    assert score == pytest.approx(accuracy(submission, project / "competitions" / "digits-demo" / "solution.csv"))
    sandboxes = list((project / ".toolkit" / "local" / "kernels").glob("*/v1/input/competitions/digits-demo"))
    assert len(sandboxes) == 3 and not any((sandbox / "solution.csv").exists() for sandbox in sandboxes)

    # The report, opened in a real browser: every run's section, the submission's score, a working sort.
    assert "report: outputs/report-digits-demo.html" in submitted.stderr
    report = project / "outputs" / "report-digits-demo.html"
    text = report.read_text()
    assert "http://" not in text and "https://" not in text and "<img alt='learning curves'" in text
    dom = browser.rendered_dom(report, "sort=tta_error")
    assert 'data-ready="yes"' in dom and 'data-sorted="tta_error"' in dom
    for slug, kind, *_ in runs:
        if kind == "train":
            assert f'id="run-{slug}"' in dom and f"confusion matrix of {slug}" in dom
    assert f"{score:.4f}" in dom.split('id="submissions-table"')[1]

    # The pretrained run really used the packaged weights; the other trained from scratch.
    metrics = {Path(o).parent.name.rsplit("-", 1)[0]: json.loads((project / o / "metrics.json").read_text())
               for _, kind, _, _, o in runs if kind == "train"}
    assert metrics["tf-efficientnet-lite0"]["weights"] == "file"
    assert metrics["resnet18"]["weights"] == "none"

    # --predict: the ensemble kernel rebuilds both models from model.pth + model.json (weights only, no
    # download) and runs TTA itself; it agrees with the stored predictions up to TTA's random augmentation.
    predicted = run("ksubmit", "ensemble", "--predict", env=env, cwd=project)
    assert predicted.returncode == 0, predicted.stderr
    assert "rerun estimate: ~" in predicted.stdout
    (out,) = db.execute("SELECT output_dir FROM runs WHERE kind = 'ensemble' ORDER BY id DESC LIMIT 1").fetchone()
    assert out != runs[2][4]
    with open(project / out / "submission.csv") as fh:
        again = list(csv.reader(fh))
    assert [r[0] for r in again] == [r[0] for r in got]
    agree = sum(a[1] == b[1] for a, b in zip(again[1:], got[1:])) / (len(got) - 1)
    assert agree >= 0.6, agree  # a broken rebuild (normalisation, class order) lands near chance (0.1)
    assert json.loads((project / out / "ensemble.json").read_text())["predicted"] is True


@pytest.mark.e2e
@pytest.mark.slow
def test_a_csv_labelled_competition_trains_and_ensembles(tmp_path):
    """Images directly in train_images/ and train.csv (ids without extension): the kernel learns the CSV's
    classes, and its outputs pull and ensemble like a folder-labelled competition's."""
    import torch

    from toolkit.competitions.demo import CSV_NAME, build_competition

    comp = build_competition(tmp_path / "competitions", limit=120, csv_labels=True)
    env = {**os.environ, "TOOLKIT_POLL_INITIAL_S": "0.5", "TOOLKIT_POLL_MAX_S": "1", "COLUMNS": "200",
           "TOOLKIT_COMPETITION": CSV_NAME}
    tiny = ["--arch", "resnet18", "--item", "Resize(32)", "--batch",
            "aug_transforms(size=32, min_scale=0.75, do_flip=False)", "--epochs", "1", "--bs", "32", "--scratch"]
    pushed = run("kpush", "train", *tiny, env=env, cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    pulled = run("kpull", "outputs", "--format", "json", env=env, cwd=tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    assert [r["status"] for r in json.loads(pulled.stdout)] == ["COMPLETE"]
    submitted = run("ksubmit", "ensemble", env=env, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    assert "ensemble score:" in submitted.stdout

    db = sqlite3.connect(tmp_path / ".toolkit" / "runs.sqlite")
    (train_out,), (ensemble_out,) = db.execute("SELECT output_dir FROM runs ORDER BY id").fetchall()
    with open(comp / "train.csv") as fh:
        classes = sorted({row["label"] for row in csv.DictReader(fh)})
    outputs = torch.load(tmp_path / train_out / "tta.pkl", weights_only=True)
    assert outputs["vocab"] == classes and outputs["probs"].shape[1] == len(classes)
    assert all("/" not in f and f.endswith(".png") for f in outputs["valid_files"])  # directly in train_images/
    with open(tmp_path / ensemble_out / "submission.csv") as fh:
        assert {row["label"] for row in csv.DictReader(fh)} <= set(classes)
