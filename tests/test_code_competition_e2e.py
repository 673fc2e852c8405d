"""The whole code-competition loop over the real kaggle client and the emulator: two training kernels,
`ksubmit ensemble --code-competition` (a predicting ensemble kernel, internet off), Kaggle's rerun of that
kernel version on the hidden test set, and the score of what the rerun wrote."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from toolkit import cli
from toolkit.competitions.demo import CODE_NAME, build_competition
from toolkit.core.config import load_config
from toolkit.project import Project

TINY = ["--batch", "aug_transforms(size=32, min_scale=0.75, do_flip=False)", "--bs", "32", "--scratch",
        "--competition", CODE_NAME, "--backend", "kaggle"]


@pytest.mark.e2e
@pytest.mark.slow  # the everyday suite reruns predicting kernels at the backend (test_code_competition*.py)
def test_a_predicting_ensemble_is_scored_on_the_hidden_test_set(start_emulator, tmp_path):
    build_competition(tmp_path / "competitions", limit=200, code=True)
    emu = start_emulator(run_kernels=True, env=dict(TOOLKIT_POLL_INITIAL_S="0.3", TOOLKIT_POLL_MAX_S="1"))
    runner = CliRunner()
    for arch, item, epochs in (("resnet18", "Resize(32)", "2"), ("resnet18", "Resize(36)", "1")):
        pushed = runner.invoke(cli.push_app, ["train", "--arch", arch, "--item", item, "--epochs", epochs, *TINY])
        assert pushed.exit_code == 0, pushed.output
    pulled = runner.invoke(cli.pull_app, ["outputs", "--backend", "kaggle", "--competition", CODE_NAME])
    assert pulled.exit_code == 0, pulled.output
    submitted = runner.invoke(cli.submit_app, ["ensemble", "--backend", "kaggle", "--competition", CODE_NAME,
                                               "--code-competition"])
    assert submitted.exit_code == 0, submitted.output

    assert "rerun estimate: ~" in submitted.output and "limit 9 h" in submitted.output
    ensemble = emu.calls("SaveKernel")[-1].body
    assert ensemble["enableInternet"] is False and len(ensemble["kernelDataSources"]) == 2
    (code_submission,) = emu.calls("CreateCodeSubmission")
    assert code_submission.body["kernelSlug"] == ensemble["slug"].split("/")[1]
    (sub,) = emu.submissions.values()
    hidden = (tmp_path / "competitions" / CODE_NAME / "hidden_test" / "solution.csv").read_text().splitlines()[1:]
    public = (tmp_path / "competitions" / CODE_NAME / "solution.csv").read_text().splitlines()[1:]
    assert not {r.split(",")[0] for r in hidden} & {r.split(",")[0] for r in public}  # ids the kernels never saw
    score = float(sub["publicScore"])
    assert f"ensemble score: {score:.4f}" in submitted.output
    # What was scored is what the rerun wrote, for every hidden id, against the hidden labels.
    rerun_dir = next(emu.runner.reruns.glob("*/*"))
    written = dict(r.split(",") for r in (rerun_dir / "working" / "submission.csv").read_text().splitlines()[1:])
    truth = dict(r.split(",") for r in hidden)
    assert set(written) == set(truth)
    assert score == pytest.approx(sum(written[i] == label for i, label in truth.items()) / len(truth), abs=1e-4)
    (stored,) = Project(load_config(backend="kaggle")).store.submissions(CODE_NAME)
    assert stored.status == "COMPLETE" and stored.score == pytest.approx(score)
    # The rerun predicted with both members' rebuilt models (not their stored predictions).
    summary = json.loads((rerun_dir / "working" / "ensemble.json").read_text())
    assert summary["predicted"] is True and summary["rows"] == len(hidden)
    assert len(summary["predict_seconds"]) == 2
