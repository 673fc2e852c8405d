"""Datasets end to end over the real kaggle client and the emulator, which runs the pushed notebooks through the
local runner in Kaggle's package environment with the attached datasets mounted where Kaggle mounts them, in the
current layout and the older flat one: runs trained on the local backend become a code-competition submission
(their outputs and models uploaded once as a private dataset, the predicting ensemble kernel attached to it, its
rerun on the hidden test set scored), a second submission with the same members uploads nothing; and a training
kernel without internet fine-tunes from this machine's weights, attached as a private dataset."""

from __future__ import annotations

import json

import pytest
from emulator import KEY, USER
from typer.testing import CliRunner

from toolkit import cli
from toolkit.competitions.demo import CODE_NAME, build_competition, build_weights
from toolkit.core.config import load_config
from toolkit.project import Project

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
TINY = ["--batch", "aug_transforms(size=32, min_scale=0.75, do_flip=False)", "--bs", "32", "--epochs", "1"]
POLL = {"TOOLKIT_POLL_INITIAL_S": "0.3", "TOOLKIT_POLL_MAX_S": "1"}
UPLOADS = ("StartBlobUpload", "upload", "CreateDataset", "CreateDatasetVersion")
LAYOUTS = ["current", "flat"]


def _ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("layout", LAYOUTS)
def test_runs_trained_locally_become_a_code_competition_submission_scored_on_its_rerun(start_emulator, tmp_path,
                                                                                      layout):
    build_competition(tmp_path / "competitions", limit=200, code=True)
    emu = start_emulator(run_kernels=True, input_layout=layout,
                         env={**POLL, "TOOLKIT_COMPETITIONS_ROOT": str(tmp_path / "competitions")})
    runner = CliRunner()
    for item in ("Resize(32)", "Resize(36)"):
        _ok(runner.invoke(cli.push_app, ["train", "--backend", "local", "--arch", "resnet18", "--item", item,
                                         "--scratch", "--competition", CODE_NAME, "--wait", *TINY]))
    _ok(runner.invoke(cli.pull_app, ["outputs", "--backend", "local", "--competition", CODE_NAME]))

    submit = ["ensemble", "--backend", "kaggle", "--competition", CODE_NAME, "--code-competition"]
    first = _ok(runner.invoke(cli.submit_app, submit))
    slug = f"{CODE_NAME}-members"
    ensemble = emu.calls("SaveKernel")[-1].body
    assert ensemble["datasetDataSources"] == [f"{USER}/{slug}"] and not ensemble.get("kernelDataSources")
    assert ensemble["enableInternet"] is False and ensemble["isPrivate"] is True
    (create,) = emu.calls("CreateDataset")
    assert create.body["isPrivate"] is True and emu.datasets[(USER, slug)].private
    files = emu.dataset_bytes(USER, slug)
    assert len(files) == 2 and all(name.endswith(".zip") for name in files)  # one folder per member
    assert all(KEY.encode() not in data for data in files.values())
    assert "trained on local" in first and f"dataset {USER}/{slug} v1: uploaded" in first
    (sub,) = emu.submissions.values()
    score = float(sub["publicScore"])
    assert f"ensemble score: {score:.4f}" in first
    rerun = next(emu.runner.reruns.glob("*/*"))  # the rerun predicted with both members' models from the dataset
    summary = json.loads((rerun / "working" / "ensemble.json").read_text())
    assert summary["predicted"] is True and len(summary["predict_seconds"]) == 2
    hidden = (tmp_path / "competitions" / CODE_NAME / "hidden_test" / "solution.csv").read_text().splitlines()[1:]
    assert summary["rows"] == len(hidden)

    uploads = len([r for r in emu.requests if r.rpc in UPLOADS])
    second = _ok(runner.invoke(cli.submit_app, [*submit, "--weights", "1,2", "--message", "weighted"]))
    assert len([r for r in emu.requests if r.rpc in UPLOADS]) == uploads  # the same members: nothing uploaded
    assert f"dataset {USER}/{slug} v1: unchanged, nothing uploaded" in second
    assert len(emu.calls("CreateCodeSubmission")) == 2 and "ensemble score: " in second
    stored = Project(load_config(backend="kaggle")).store.latest_dataset("kaggle", f"{USER}/{slug}")
    assert stored.version == 1 and stored.files == 8  # tta.pkl, metrics.json, model.pth, model.json each


@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_offline_training_kernel_fine_tunes_from_this_machines_weights(start_emulator, tmp_path, layout):
    build_competition(tmp_path / "competitions", limit=80)
    build_weights(tmp_path / "project" / "datasets")
    emu = start_emulator(run_kernels=True, input_layout=layout, env=POLL)
    runner = CliRunner()
    pushed = _ok(runner.invoke(cli.push_app, ["train", "--backend", "kaggle", "--no-internet", "--pretrained",
                                              "--arch", "tf_efficientnet_lite0", "--item", "Resize(32)", "--wait",
                                              *TINY]))
    slug = "timm-weights-tf-efficientnet-lite0"
    (train,) = [c.body for c in emu.calls("SaveKernel")]
    assert train["enableInternet"] is False and train["datasetDataSources"] == [f"{USER}/{slug}"]
    (create,) = emu.calls("CreateDataset")
    assert create.body["isPrivate"] is True and list(emu.dataset_bytes(USER, slug)) == ["tf_efficientnet_lite0.pth"]
    assert f"dataset {USER}/{slug} v1: uploaded 1 file" in pushed
    _ok(runner.invoke(cli.pull_app, ["outputs", "--backend", "kaggle"]))
    (run,) = Project(load_config(backend="kaggle")).store.runs(kind="train")
    assert run.metrics["weights"] == "file" and run.metrics["pretrained"] is True
