"""bench/kernel_throughput.py --cpu-tiny: the GPU throughput bench's every step on a few dozen small images,
so it cannot rot (CPU numbers mean nothing for the GPU targets)."""

from __future__ import annotations

import json
import math

import pytest
from test_throughput_equivalence import kt


@pytest.mark.slow
def test_cpu_tiny_bench_runs_every_mode_and_writes_json(tmp_path, capsys):
    result = kt.main(["--cpu-tiny", "--out", str(tmp_path / "results"), "--data", str(tmp_path / "data")])
    out = capsys.readouterr().out
    [row] = result["rows"]
    assert row["arch"] == "resnet18" and row["kernel_pipeline"] == "fast"  # the rendered kernel, fast path forced
    for key in ("seed_img_s", "kernel_img_s", "model_img_s", "kernel_vs_seed", "kernel_vs_model"):
        assert math.isfinite(row[key]) and row[key] > 0, key
    for run in ("seed_train", "kernel_train"):
        assert 0 <= row[run]["valid_error"] <= 1 and 0 <= row[run]["tta_error"] <= 1
    [written] = (tmp_path / "results").glob("kernel-throughput-cpu-tiny-*.json")
    assert json.loads(written.read_text())["rows"] == json.loads(json.dumps(result["rows"]))
    assert "kern/seed" in out and "resnet18" in out
