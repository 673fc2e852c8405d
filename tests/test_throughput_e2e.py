"""A rendered training kernel with the fast data path trains end to end on the local backend (real ipykernel,
fastai's default loader workers, PNG images decoded on the CPU fallback) and reports its pipeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
TINY = ["--item", "Resize(24)", "--batch", "aug_transforms(size=24, do_flip=False)", "--epochs", "1", "--bs", "16",
        "--scratch"]


def run(command: str, *args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / command), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.e2e
@pytest.mark.slow
def test_fast_pipeline_kernel_trains_on_the_local_backend(tmp_path):
    from toolkit.competitions.demo import build_competition

    build_competition(tmp_path / "competitions", limit=120)
    (tmp_path / "toolkit.toml").write_text('[train]\npipeline = "fast"\n')  # no GPU here, so "auto" would be seed
    env = {**os.environ, "TOOLKIT_POLL_INITIAL_S": "0.5", "TOOLKIT_POLL_MAX_S": "1", "COLUMNS": "200",
           "KAGGLE_KEY": "local-e2e-fake-key-5d4c3b2a"}
    pushed = run("kpush", "train", "--arch", "resnet18", *TINY, env=env, cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    pulled = run("kpull", "outputs", "--format", "json", env=env, cwd=tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    [row] = json.loads(pulled.stdout)
    assert row["status"] == "COMPLETE" and 0 <= row["tta_error"] <= 1

    [notebook] = (tmp_path / "kernels").glob("resnet18-*/resnet18-*.ipynb")
    assert "PIPELINE = 'fast'" in notebook.read_text()
    [metrics_file] = (tmp_path / "outputs").rglob("metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert metrics["pipeline"] == "fast" and metrics["n_test"] > 0
