"""Packing: one kernel trains two runs (one per GPU on Kaggle, one after another on a CPU), and every
other command still sees one run, one result each."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from toolkit.kernel.render import notebook_code, render_pack_notebook, render_train_notebook
from toolkit.specs.spec import build_spec

BIN = Path(sys.executable).parent
TINY = ["--item", "Resize(16)", "--batch", "aug_transforms(size=16, do_flip=False)", "--epochs", "1", "--bs", "16",
        "--scratch"]


def test_pack_notebook_holds_each_members_training_code():
    specs = [build_spec({"arch": a, "competition": "digits-demo"}) for a in ("resnet18", "resnet10t")]
    codes = {s.slug: notebook_code(render_train_notebook(s, out_dir=s.slug)) for s in specs}
    notebook = render_pack_notebook("pack-2-abcdef12", codes)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    source = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    compile(source, "pack", "exec")
    for spec in specs:
        compile(codes[spec.slug], spec.slug, "exec")  # each member is a valid script
        assert f"OUT_DIR = {spec.slug!r}" in codes[spec.slug]
    assert "CUDA_VISIBLE_DEVICES" in source


def cli(command: str, *args: str, project: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / command), *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.e2e
@pytest.mark.slow
def test_packed_runs_train_in_one_kernel_and_ensemble(tmp_path):
    import os

    from toolkit.competitions.demo import build_competition

    build_competition(tmp_path / "competitions", limit=120)
    env = {**os.environ, "TOOLKIT_POLL_INITIAL_S": "0.5", "TOOLKIT_POLL_MAX_S": "1", "COLUMNS": "200"}
    pushed = cli("kpush", "train", "--arch", "resnet18", "--arch", "resnet10t", *TINY, "--pack", "2",
                 project=tmp_path, env=env)
    assert pushed.returncode == 0, pushed.stderr
    assert "packed into pack-2-" in pushed.stdout
    pushed_kernels = [p.name for p in (tmp_path / ".toolkit" / "local" / "kernels").iterdir()]
    assert len(pushed_kernels) == 1 and pushed_kernels[0].startswith("pack-2-")  # two runs, one kernel

    pulled = cli("kpull", "outputs", "--format", "json", project=tmp_path, env=env)
    assert pulled.returncode == 0, pulled.stderr
    rows = json.loads(pulled.stdout)
    assert sorted(r["arch"] for r in rows) == ["resnet10t", "resnet18"]
    assert all(r["status"] == "COMPLETE" and r["tta_error"] is not None for r in rows)
    for row in rows:  # each run has its own outputs, not its neighbour's
        data = json.loads((tmp_path / "outputs" / row["slug"] / "v1" / "metrics.json").read_text())
        assert data["arch"] == row["arch"]

    submitted = cli("ksubmit", "ensemble", project=tmp_path, env=env)
    assert submitted.returncode == 0, submitted.stderr
    meta = json.loads(next((tmp_path / "kernels").glob("ensemble-*/kernel-metadata.json")).read_text())
    assert len(meta["kernel_sources"]) == 1 and "/pack-2-" in meta["kernel_sources"][0]

    again = cli("ksubmit", "ensemble", project=tmp_path, env=env)  # the same ensemble is not submitted twice
    assert again.returncode == 0 and "already submitted" in again.stderr
    board = json.loads((tmp_path / ".toolkit" / "local" / "submissions.json").read_text())
    assert len(board) == 1
