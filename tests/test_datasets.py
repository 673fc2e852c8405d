"""Datasets for kernels, without running one: slugs Kaggle takes, a laid-out folder and its content hash, a member
found in a dataset mount (unpacked by Kaggle, or left as its zip), which runs a Kaggle ensemble takes from other
backends (and the ambiguity refused in one line), and `ksubmit ensemble --dry-run` for Kaggle with only a username
set: the ensemble kernel and the members' dataset written, nothing contacted."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from toolkit import cli
from toolkit.core.config import load_config
from toolkit.core.errors import EnsembleError
from toolkit.core.status import Status
from toolkit.ensembles.candidates import choose_members
from toolkit.kernel import contract
from toolkit.kernel.datasets import (METADATA_FILE, content_hash, dataset_metadata, dataset_slug, members_slug,
                                     weights_slug, write_dataset)
from toolkit.kernel.render import run_identity
from toolkit.kernel.runtime import inputs
from toolkit.kernel.runtime.ensemble import member_outputs
from toolkit.project import Project
from toolkit.runs.outputs.loaded import Outputs

COMP = "code-comp"
FILES, VOCAB = ["a.png", "b.png", "c.png"], ["one", "two"]


def finished_run(project: Project, arch: str, backend: str, seed: int = 0):
    """A finished training run of `backend` with its outputs pulled here, and its model files in its local sandbox."""
    spec = {"arch": arch, "competition": COMP, "item": "Resize(32)", "batch": None, "seed": 42}
    slug, spec_hash = f"{arch.replace('_', '-')}-{seed:08x}", f"{seed:08x}"
    run = project.store.add_run(slug, "train", backend, COMP, spec_hash, spec)
    project.store.record_push([run.id], 1, "file://x")
    project.store.set_status(run.id, Status.COMPLETE)
    out = project.config.outputs_dir / slug / "v1"
    out.mkdir(parents=True)
    metrics = {"tta_error": 0.1 + seed / 100, "arch": arch, "n_test": 3, "tta_seconds_per_image": 0.01}
    torch.manual_seed(seed)
    torch.save({"probs": torch.rand(3, 2), "files": FILES, "vocab": VOCAB, "identity": run_identity(slug, spec_hash),
                "metrics": metrics, "format": contract.FORMAT}, out / contract.TTA_FILE)
    (out / contract.METRICS_FILE).write_text(json.dumps(metrics))
    working = project.config.state_dir / backend / "kernels" / slug / "v1" / "working"
    working.mkdir(parents=True)
    (working.parent / "state.json").write_text(json.dumps({"status": "COMPLETE"}))
    torch.save({"w": torch.zeros(1)}, working / contract.MODEL_FILE)
    (working / contract.MODEL_INFO_FILE).write_text(json.dumps(
        {"arch": arch, "vocab": VOCAB, "identity": None, "item": "Resize(32)", "batch": None, "normalize": None}))
    return project.store.set_outputs(run.id, project.kept(out), metrics)


# -- names, folders, hashes -------------------------------------------------------------------------------------

def test_slugs_are_what_kaggle_takes():
    assert weights_slug("convnext_small.fb_in22k") == "timm-weights-convnext-small-fb-in22k"
    assert members_slug("digits-demo") == "digits-demo-members"
    assert dataset_slug("ab") == "ab-data"  # 6 characters at least (kaggle 2.2.5 dataset_create_new)
    long = dataset_slug("timm-weights-" + "x" * 60)
    assert len(long) == 50 and long.startswith("timm-weights-xxx") and long != dataset_slug("timm-weights-" + "y" * 60)


def test_a_laid_out_dataset_is_what_is_uploaded_and_hashes_by_content(tmp_path):
    (tmp_path / "w.pth").write_bytes(b"weights")
    meta = dataset_metadata("alice", "timm-weights-resnet18", "unknown", "timm's weights")
    folder = write_dataset(tmp_path / "datasets" / "timm-weights-resnet18", meta, {"resnet18.pth": tmp_path / "w.pth"})
    assert json.loads((folder / METADATA_FILE).read_text())["id"] == "alice/timm-weights-resnet18"
    assert (folder / "resnet18.pth").read_bytes() == b"weights"
    again = write_dataset(tmp_path / "elsewhere", {**meta, "title": "another title"}, {"resnet18.pth": tmp_path / "w.pth"})
    assert content_hash(again) == content_hash(folder)  # metadata aside: the same files, the same content
    (tmp_path / "v.pth").write_bytes(b"other")
    write_dataset(folder, meta, {"resnet18.pth": tmp_path / "v.pth"})
    assert content_hash(folder) != content_hash(again) and not (folder / "w.pth").exists()


# -- the ensemble kernel finds a member in a dataset mount ---------------------------------------------------------

def _member_folder(root: Path, slug: str) -> dict:
    folder = root / slug
    folder.mkdir(parents=True)
    identity = run_identity(slug, "0000aaaa")
    torch.save({"probs": torch.rand(3, 2), "files": FILES, "vocab": VOCAB, "identity": identity, "metrics": {}},
               folder / contract.TTA_FILE)
    import hashlib
    return {"name": slug, "source": None, "dataset": "alice/comp-members", "version": 1,
            "tta": f"{slug}/{contract.TTA_FILE}", "identity": identity,
            "sha256": hashlib.sha256((folder / contract.TTA_FILE).read_bytes()).hexdigest()}


@pytest.mark.parametrize("mount", ["datasets/alice/comp-members", "comp-members"], ids=["current", "flat"])
def test_a_member_is_found_in_the_dataset_mount_in_either_layout(tmp_path, monkeypatch, mount):
    member = _member_folder(tmp_path / "input" / mount, "resnet18-0000aaaa")
    monkeypatch.setattr(inputs, "INPUT", tmp_path / "input")
    folder, data = member_outputs(member)
    assert folder == tmp_path / "input" / mount / "resnet18-0000aaaa" and data["vocab"] == VOCAB


def test_a_member_left_packed_is_unpacked_outside_the_working_directory(tmp_path, monkeypatch):
    member = _member_folder(tmp_path / "packed", "resnet18-0000aaaa")
    mount = tmp_path / "input" / "datasets" / "alice" / "comp-members"
    mount.mkdir(parents=True)
    with zipfile.ZipFile(mount / "resnet18-0000aaaa.zip", "w") as archive:
        archive.write(tmp_path / "packed" / "resnet18-0000aaaa" / "tta.pkl", "tta.pkl")
    monkeypatch.setattr(inputs, "INPUT", tmp_path / "input")
    monkeypatch.setattr(inputs.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    folder, _ = member_outputs(member)
    assert folder == tmp_path / "tmp" / "kernel-datasets" / "alice--comp-members" / "resnet18-0000aaaa"
    with zipfile.ZipFile(mount / "evil.zip", "w") as archive:
        archive.writestr("../../escaped.txt", "no")
    with pytest.raises(ValueError, match="would land outside"):
        inputs.dataset_file("alice/comp-members", "evil/escaped.txt")
    assert not (tmp_path / "tmp" / "escaped.txt").exists()


# -- which runs a Kaggle ensemble takes ------------------------------------------------------------------------

def test_a_kaggle_ensemble_takes_finished_runs_of_every_backend_whose_outputs_are_here(tmp_path):
    project = Project(load_config(tmp_path, backend="kaggle", username="alice", competition=COMP), offline=True)
    local, ray = finished_run(project, "resnet18", "local", 1), finished_run(project, "resnet34", "ray", 2)
    chosen = choose_members(project, COMP, Outputs(project), fetch=False)
    assert [(r.slug, r.backend) for r in chosen] == [(local.slug, "local"), (ray.slug, "ray")]
    assert [r.backend for r in choose_members(project, COMP, Outputs(project), sources=["ray"], fetch=False)] == ["ray"]


def test_the_same_run_finished_on_two_backends_is_refused_in_one_line(tmp_path):
    project = Project(load_config(tmp_path, backend="kaggle", username="alice", competition=COMP), offline=True)
    finished_run(project, "resnet18", "local", 1)
    twin = project.store.add_run("resnet18-00000001", "train", "ray", COMP, "00000001",
                                 {"arch": "resnet18", "competition": COMP})
    project.store.record_push([twin.id], 1, "file://x")
    project.store.set_status(twin.id, Status.COMPLETE)
    project.store.set_outputs(twin.id, "outputs/resnet18-00000001/v1", {"tta_error": 0.1})
    with pytest.raises(EnsembleError) as refused:
        choose_members(project, COMP, Outputs(project), fetch=False)
    assert str(refused.value) == ("resnet18-00000001 finished on both local and ray "
                                  "(keep one with --from local (or --from ray))")


def test_a_local_ensemble_takes_its_own_runs_only(tmp_path):
    project = Project(load_config(tmp_path, backend="local", competition=COMP), offline=True)
    finished_run(project, "resnet18", "local", 1)
    with pytest.raises(EnsembleError, match=r"a local ensemble takes runs trained on local only.*--backend kaggle"):
        choose_members(project, COMP, Outputs(project), sources=["kaggle"])


# -- ksubmit ensemble --dry-run: rendered and laid out, nothing contacted ----------------------------------------

def test_a_dry_run_for_a_kaggle_code_competition_needs_only_a_username(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_PROJECT", str(tmp_path))
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")  # no key, no token: only who the kernels belong to
    for name in ("KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # anything that tried to connect would fail
    project = Project(load_config(tmp_path, competition=COMP))
    runs = [finished_run(project, "resnet18", "local", 1), finished_run(project, "resnet34", "local", 2)]
    on_kaggle = finished_run(project, "resnet50", "kaggle", 3)  # a Kaggle-trained member stays a kernel source
    result = CliRunner().invoke(cli.submit_app, ["ensemble", "--backend", "kaggle", "--code-competition",
                                                 "--competition", COMP, "--dry-run"])
    assert result.exit_code == 0, result.output
    (kernel,) = (tmp_path / "kernels").iterdir()
    meta = json.loads((kernel / "kernel-metadata.json").read_text())
    assert meta["dataset_sources"] == ["alice/code-comp-members"]
    assert meta["kernel_sources"] == [f"alice/{on_kaggle.slug}"]
    assert meta["enable_internet"] is False and meta["is_private"] is True
    dataset = tmp_path / "datasets" / "code-comp-members"
    assert json.loads((dataset / METADATA_FILE).read_text())["id"] == "alice/code-comp-members"
    assert sorted(p.relative_to(dataset).as_posix() for p in dataset.rglob("*") if p.is_file()) == sorted(
        [METADATA_FILE] + [f"{r.slug}/{n}" for r in runs for n in (*contract.TRAIN_OUTPUTS, *contract.MODEL_OUTPUTS)])
    assert f"{runs[0].slug} (trained on local, weight 1)" in result.output
    assert f"{on_kaggle.slug} (weight 1)" in result.output and f"rendered {kernel.relative_to(tmp_path)}" in result.output
    assert "rendered datasets/code-comp-members" in result.output
    assert Project(load_config(tmp_path)).store.runs(kind="ensemble") == []  # nothing recorded
