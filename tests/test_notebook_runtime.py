"""The kernel code a user's own notebook gets in its injected cell, as ordinary modules on the CPU: fastkaggle's
setup_comp and iskaggle as on Kaggle today, the run's pretrained weights for the notebook's own timm models, and
a check's batches that fit its miniature."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest
import timm
import torch

from toolkit.kernel.runtime import competition_setup, miniature, pretrained


@pytest.fixture
def mounted(tmp_path, monkeypatch):
    """A kernel's working directory with a competition mounted in Kaggle's current layout."""
    comp = tmp_path / "input" / "competitions" / "paddy-disease-classification"
    comp.mkdir(parents=True)
    (comp / "sample_submission.csv").write_text("image_id,label\n")
    (tmp_path / "working").mkdir()
    monkeypatch.chdir(tmp_path / "working")
    return comp


def test_setup_comp_returns_the_competitions_folder_where_kaggle_mounts_it_today(mounted):
    assert competition_setup.setup_comp("paddy-disease-classification").resolve() == mounted.resolve()


def test_setup_comp_finds_the_flat_layout_too(tmp_path, monkeypatch):
    (tmp_path / "input" / "paddy-disease-classification").mkdir(parents=True)
    (tmp_path / "input" / "paddy-disease-classification" / "sample_submission.csv").write_text("image_id,label\n")
    (tmp_path / "working").mkdir()
    monkeypatch.chdir(tmp_path / "working")
    found = competition_setup.setup_comp("paddy-disease-classification")
    assert found.resolve() == (tmp_path / "input" / "paddy-disease-classification").resolve()


def test_a_failed_install_is_said_and_the_notebook_goes_on(mounted, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pip").write_text("#!/bin/sh\nexit 1\n")  # pip as it fails without internet
    (bin_dir / "pip").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        found = competition_setup.setup_comp("paddy-disease-classification", install='fastai "timm>=0.6.2.dev0"')
    assert found.resolve() == mounted.resolve()
    assert 'pip install fastai "timm>=0.6.2.dev0" failed (exit 1)' in out.getvalue()


def test_an_install_of_a_package_already_imported_says_the_kernel_keeps_its_version():
    import fastai

    assert competition_setup.loaded_already('fastai "timm>=0.6.2.dev0" -q') == [f"fastai {fastai.__version__}",
                                                                                f"timm {timm.__version__}"]
    assert competition_setup.loaded_already("no-such-package") == []


def test_iskaggle_is_fastkaggles_own_test():
    assert competition_setup.iskaggle == os.environ.get("KAGGLE_KERNEL_RUN_TYPE", "")


@pytest.fixture
def restore_timm():
    original = timm.create_model
    yield
    timm.create_model = original
    pretrained.LOADED.clear()


def test_a_notebooks_pretrained_model_gets_the_attached_weights_file(tmp_path, restore_timm):
    weights = tmp_path / "resnet18.pth"
    reference = timm.create_model("resnet18", pretrained=False)
    torch.save(reference.state_dict(), weights)
    pretrained.use_pretrained("resnet18", weights, pretrained=True)
    model = timm.create_model("resnet18", pretrained=True)  # as fastai's vision_learner calls it
    assert torch.equal(model.state_dict()["conv1.weight"], reference.state_dict()["conv1.weight"])
    assert pretrained.LOADED == {"resnet18": "file"}


def test_a_run_from_scratch_starts_a_notebooks_pretrained_model_from_random_weights(restore_timm):
    pretrained.use_pretrained("resnet18", None, pretrained=False)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        timm.create_model("resnet18", True, num_classes=3)  # pretrained given by position
    assert "resnet18: this run trains from scratch" in out.getvalue()
    assert pretrained.LOADED == {"resnet18": "none"}


def test_other_models_and_installing_twice_are_left_as_timm_makes_them(restore_timm):
    original = timm.create_model
    pretrained.use_pretrained("resnet18", None, pretrained=False)
    pretrained.use_pretrained("resnet18", None, pretrained=False)
    assert timm.create_model.toolkit_original is original  # wrapped once, whatever the calls
    timm.create_model("resnet10t", pretrained=False)
    assert pretrained.LOADED == {}


def test_a_checks_loaders_take_at_most_its_batch_size():
    from fastai.data.load import DataLoader

    original = DataLoader.__init__
    try:
        miniature.fit_batches(4)
        miniature.fit_batches(4)  # twice: still one cap
        assert DataLoader.__init__.toolkit_original is original
        loader = DataLoader(list(range(10)), bs=64, drop_last=True)
        assert loader.bs == 4 and len(loader) == 2
        assert DataLoader(list(range(10)), batch_size=64).bs == 4
    finally:
        DataLoader.__init__ = original


def test_the_injected_helpers_import_only_what_kaggles_image_has():
    from kaggle_imports import not_on_kaggle

    for module in (competition_setup, pretrained, miniature):
        assert not_on_kaggle(Path(module.__file__).read_text()) == set(), module.__name__
