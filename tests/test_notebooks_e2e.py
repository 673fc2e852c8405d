"""Jeremy Howard's Road to the Top notebooks (tests/notebooks/, each with the edits its first cell names), checked
and trained on the local backend through the console scripts, on a Paddy-shaped competition named as Paddy
Doctor is: their own first cells (fastkaggle installed with pip into the session, setup_comp, iskaggle) run
unchanged, their own vision_learner gets the run's pretrained weights, and the results show only what each
notebook received. The sessions' pip installs reach the package index, as a Kaggle kernel with internet does."""

from __future__ import annotations

import json
import shutil

import pytest
from console import console
from test_notebooks import NOTEBOOKS, PART2, PART3

from toolkit.competitions.demo import PADDY_NAME, build_competition, build_weights

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
COMP = ["--competition", PADDY_NAME]


@pytest.fixture
def project(tmp_path):
    build_competition(tmp_path / "competitions", limit=80, paddy=True)
    build_weights(tmp_path / "datasets")
    (tmp_path / "templates").mkdir()
    for name in (PART2, PART3):
        shutil.copy(NOTEBOOKS / f"{name}.ipynb", tmp_path / "templates" / f"{name}.ipynb")
    return tmp_path


def _trained(project, *args: str, **env: str) -> dict:
    """Check, then train and pull one run of these flags; its row of kpull outputs."""
    checked = console(project, "kpush", "train", *COMP, *args, "--check", "--dry-run", timeout=900, **env)
    assert checked.returncode == 0 and "checked 1 kernel" in checked.stdout, checked.stderr
    trained = console(project, "kpush", "train", *COMP, *args, "--wait", timeout=900, **env)
    assert trained.returncode == 0 and "COMPLETE" in trained.stdout, trained.stdout + trained.stderr
    pulled = console(project, "kpull", "outputs", "--format", "json", timeout=300, **env)
    assert pulled.returncode == 0, pulled.stderr
    return json.loads(pulled.stdout)[-1]


def test_part_2_with_four_edits_is_checked_and_trains_with_the_runs_pretrained_weights(project):
    row = _trained(project, "--arch", "tf_efficientnet_lite0", "--epochs", "1", "--template", PART2)
    assert row["arch"] == "tf_efficientnet_lite0" and row["epochs"] == 1 and row["status"] == "COMPLETE"
    assert row["item_tfms"] is None and row["batch_tfms"] is None  # the notebook's own: not the run's to show
    [folder] = (project / "outputs").glob("tf-efficientnet-lite0-*/v1")
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["weights"] == "file" and metrics["pretrained"] is True  # its own vision_learner, our weights
    log = console(project, "klogs", row["slug"]).stdout
    assert "image_id,label" in log  # its own submission cells ran, `!head subm.csv` included


def test_part_3_trains_one_model_a_run_under_the_older_flat_layout(project):
    row = _trained(project, "--arch", "resnet18", "--epochs", "1", "--item", "Resize(64)", "--param", "size=48",
                   "--template", PART3, TOOLKIT_INPUT_LAYOUT="flat")
    assert row["item_tfms"] == "Resize(64)" and row["params"] == {"size": 48} and row["epochs"] == 1
    log = console(project, "klogs", row["slug"], TOOLKIT_INPUT_LAYOUT="flat").stdout
    assert "training from scratch" in log or "trains from scratch" in log  # no resnet18 weights on this machine
