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

import pytest

BIN = Path(sys.executable).parent
TINY = ["--item", "Resize(24)", "--batch", "aug_transforms(size=24, do_flip=False)", "--epochs", "1", "--bs", "16"]


def run(command: str, *args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / command), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from toolkit.demo import build_competition, build_weights

    root = tmp_path_factory.mktemp("project")
    build_competition(root / "competitions", limit=160)
    build_weights(root / "datasets")
    return root


@pytest.mark.e2e
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
    submission = Path(runs[2][4]) / "submission.csv"
    sample = project / "competitions" / "digits-demo" / "sample_submission.csv"
    with open(submission) as fh, open(sample) as sh:
        got, expected = list(csv.reader(fh)), list(csv.reader(sh))
    assert [r[0] for r in got] == [r[0] for r in expected]
    vocab = sorted(p.name for p in (project / "competitions" / "digits-demo" / "train_images").iterdir())
    assert {r[1] for r in got[1:]} <= set(vocab)

    # Scored against the hidden labels, which the kernels never saw.
    from toolkit.scoring import accuracy
    assert score == pytest.approx(accuracy(submission, project / "competitions" / "digits-demo" / "solution.csv"))
    for sandbox in (project / ".toolkit" / "local" / "kernels").glob("*/v1/input/digits-demo"):
        assert not (sandbox / "solution.csv").exists()

    # The pretrained run really used the packaged weights; the other trained from scratch.
    metrics = {Path(o).parent.name.rsplit("-", 1)[0]: json.loads((Path(o) / "metrics.json").read_text())
               for _, kind, _, _, o in runs if kind == "train"}
    assert metrics["tf-efficientnet-lite0"]["weights"] == "file"
    assert metrics["resnet18"]["weights"] == "none"
