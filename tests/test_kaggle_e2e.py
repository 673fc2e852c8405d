"""The CLI with --backend kaggle over the emulator: store consistency under faults, and render -> push ->
run -> pull -> ensemble -> submit -> score end to end on a tiny competition."""

from __future__ import annotations

import csv
import json
import sys

import pytest
from emulator import KEY, USER, build_tiny_competition, write_kernel
from typer.testing import CliRunner

from toolkit import cli
from toolkit.core.config import load_config
from toolkit.core.errors import BackendError
from toolkit.core.status import Status
from toolkit.project import Project
from toolkit.runs.plan import plan_train
from toolkit.runs.schedule import push_run, record
from toolkit.runs.watch.wait import refresh_and_push

TINY = ["--item", "Resize(16)", "--batch", "aug_transforms(size=16, do_flip=False)", "--epochs", "1",
        "--bs", "16", "--scratch"]
POLL = {"TOOLKIT_POLL_INITIAL_S": "0.3", "TOOLKIT_POLL_MAX_S": "1"}


def test_failed_pushes_leave_runs_waiting(start_emulator, tmp_path):
    emu = start_emulator(env=POLL)
    build_tiny_competition(tmp_path / "competitions", "tiny-comp")
    project = Project(load_config(backend="kaggle", competition="tiny-comp"))
    record(project, plan_train(project, ["resnet18"], {"epochs": 1}))
    emu.fail("SaveKernel", "drop")
    with pytest.raises(BackendError, match="could not reach Kaggle"):
        refresh_and_push(project)
    assert [r.status for r in project.store.runs()] == [Status.NEW]
    emu.fail("SaveKernel", "slots_full")
    assert [(r.status, r.version) for r in refresh_and_push(project)] == [(Status.NEW, None)]  # waits for a slot
    run = refresh_and_push(project)[0]
    assert (run.status, run.version) == (Status.QUEUED, 1)
    assert len(emu.kernels[run.slug]["versions"]) == 1  # the refused pushes created nothing


def test_cpu_session_limit_keeps_the_ensemble_waiting(start_emulator, tmp_path):
    """An ensemble kernel runs on CPU: Kaggle's CPU session limit holds it back as the GPU one holds training."""
    emu = start_emulator(env=POLL)
    build_tiny_competition(tmp_path / "competitions", "tiny-comp")
    emu.cpu_slots = 1
    project = Project(load_config(backend="kaggle", competition="tiny-comp"))
    for slug in ("other-cpu-job1", "ensemble-tiny-comp-0a1b2c3d"):  # the ensemble's shape: no GPU, no internet
        write_kernel(project.config.kernels_dir, slug, "1", gpu=False, internet=False)
    project.backend.push(project.config.kernels_dir / "other-cpu-job1")  # holds the only CPU slot
    ensemble = project.store.add_run("ensemble-tiny-comp-0a1b2c3d", "ensemble", "kaggle", "tiny-comp",
                                     "0a1b2c3d", {"competition": "tiny-comp"})
    assert push_run(project, ensemble) is None  # "Maximum batch CPU session count of 1 reached": it waits
    assert project.store.get(ensemble.id).status == Status.NEW
    emu.version("other-cpu-job1").status = "COMPLETE"  # the other session ends
    pushed = next(r for r in refresh_and_push(project) if r.id == ensemble.id)
    assert (pushed.status, pushed.version) == (Status.QUEUED, 1)
    # The refused push left an empty kernel: its "Notebook not found" led to deleting it, then the push.
    refused, blocked, accepted = [c for c in emu.calls("SaveKernel") if c.body["slug"].endswith(ensemble.slug)]
    assert emu.deleted == [ensemble.slug] and len(emu.kernels[ensemble.slug]["versions"]) == 1
    assert "machineShape" not in accepted.body and accepted.body["enableGpu"] is False


def test_exhausted_weekly_quota_ends_kpush_with_one_line(start_emulator, tmp_path, monkeypatch, capsys):
    """Final, not a wait: one refused push, one line naming the refresh time, non-zero exit, the run kept."""
    emu = start_emulator(env=POLL)
    build_tiny_competition(tmp_path / "competitions", "tiny-comp")
    emu.gpu_seconds_used = emu.gpu_seconds_allowed
    monkeypatch.setattr(sys, "argv", ["kpush", "train", "--arch", "resnet18", *TINY, "--backend", "kaggle",
                                      "--competition", "tiny-comp"])
    with pytest.raises(SystemExit) as exited:
        cli.kpush()
    err = capsys.readouterr().err.strip()
    assert exited.value.code == 2 and "\n" not in err and "Traceback" not in err
    assert "Maximum weekly GPU quota of 30.00 hours reached" in err and "2030-01-06 00:00 UTC" in err
    assert len(emu.calls("SaveKernel")) == 1
    assert [r.status for r in Project(load_config(backend="kaggle")).store.runs()] == [Status.NEW]


@pytest.mark.e2e
# Where Kaggle mounts inputs today, and before; and a competition labelled by train.csv, which exists only on
# "Kaggle" here, so its columns come from the settings.
@pytest.mark.parametrize("layout,csv_labels", [("current", False), pytest.param("flat", False, marks=pytest.mark.slow),
                                               pytest.param("current", True, marks=pytest.mark.slow)],
                         ids=["current", "flat", "csv-labels"])
def test_cli_end_to_end_over_the_emulator(start_emulator, tmp_path, monkeypatch, layout, csv_labels):
    from toolkit.competitions.demo import build_competition

    comp = build_competition(tmp_path / "competitions", limit=120, csv_labels=csv_labels)
    emu = start_emulator(run_kernels=True, input_layout=layout, env=POLL)
    monkeypatch.setenv("TOOLKIT_COMPETITION", comp.name)
    if csv_labels:
        monkeypatch.setenv("TOOLKIT_ID_COLUMN", "image_id")
        monkeypatch.setenv("TOOLKIT_LABEL_COLUMN", "label")
    runner = CliRunner()
    pushed = runner.invoke(cli.push_app, ["train", "--arch", "resnet18", *TINY, "--backend", "kaggle"],
                           catch_exceptions=False)
    assert pushed.exit_code == 0, pushed.output
    pulled = runner.invoke(cli.pull_app, ["outputs", "--backend", "kaggle"], catch_exceptions=False)
    assert pulled.exit_code == 0, pulled.output
    submitted = runner.invoke(cli.submit_app, ["ensemble", "--backend", "kaggle"], catch_exceptions=False)
    assert submitted.exit_code == 0, submitted.output

    train, ensemble = [r.body for r in emu.calls("SaveKernel")]
    assert train["machineShape"] == "NvidiaTeslaT4" and train["enableGpu"] is True
    assert train["isPrivate"] is True and train["enableInternet"] is True
    assert train["competitionDataSources"] == [comp.name]
    assert train["sessionTimeoutSeconds"] == 9 * 3600 - 300  # under the 9 h GPU sessions may be capped at
    assert json.loads(train["text"])["metadata"]["kernelspec"]["name"] == "python3"
    slug = train["slug"].split("/")[1]
    # The documented kernel source form (owner/slug); the kernel checks it got the version pulled here.
    assert ensemble["kernelDataSources"] == [f"{USER}/{slug}"] and "machineShape" not in ensemble
    assert ensemble["enableInternet"] is False and ensemble["isPrivate"] is True
    assert json.loads(ensemble["text"])["metadata"]["kernelspec"]["name"] == "python3"
    for request in emu.requests:  # the key travels only in the Authorization header
        assert KEY not in json.dumps(request.body if not isinstance(request.body, bytes) else "")

    (sub,) = emu.submissions.values()
    project = Project(load_config(backend="kaggle"))
    (stored,) = project.store.submissions(comp.name)
    assert stored.status == "COMPLETE" and stored.score == pytest.approx(float(sub["publicScore"]))
    assert f"ensemble score: {stored.score:.4f}" in submitted.output
    assert all(r.status == Status.COMPLETE for r in project.store.runs())
    # The kernel learnt the classes the labels name: the class folders, or train.csv's label column.
    import torch

    run = next(r for r in project.store.runs() if r.kind == "train")
    vocab = torch.load(project.run_folder(run) / "tta.pkl", weights_only=True)["vocab"]
    if csv_labels:
        with open(comp / "train.csv") as fh:
            assert vocab == sorted({row["label"] for row in csv.DictReader(fh)})
    else:
        assert vocab == sorted(p.name for p in (comp / "train_images").iterdir())
