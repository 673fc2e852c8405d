"""The estimate `kpush` prints before a local run starts, against how long the run then takes: the demo's
resnet18 run (`make demo`'s second), measured while nothing else trains, within the 2x it claims."""

from __future__ import annotations

import json
import re

import pytest
from console import console

DEMO_RESNET = ["--arch", "resnet18", "--item", "Resize(32)", "--batch",
               "aug_transforms(size=32, min_scale=0.75, do_flip=False, max_rotate=10.0)", "--epochs", "4", "--bs", "32"]


@pytest.mark.e2e
@pytest.mark.slow
def test_the_demo_run_takes_what_its_estimate_says_within_2x(tmp_path):
    from toolkit.competitions.demo import build_competition

    build_competition(tmp_path / "competitions")
    pushed = console(tmp_path, "kpush", "train", *DEMO_RESNET, "--wait", TOOLKIT_POLL_INITIAL_S="0.5",
                     TOOLKIT_POLL_MAX_S="1")
    assert pushed.returncode == 0, pushed.stderr
    said = re.search(r"about (\d+) (seconds|minutes) on this machine, likely within 2x \(measured", pushed.stdout)
    assert said, pushed.stdout
    (state,) = [json.loads(p.read_text()) for p in tmp_path.glob(".toolkit/local/kernels/*/v1/state.json")]
    took = (state["finished_at"] - state["started_at"]) / 60
    estimate = float(said.group(1)) / (60 if said.group(2) == "seconds" else 1)
    assert 0.5 <= estimate / took <= 2, (estimate, took)
