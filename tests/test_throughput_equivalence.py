"""The training kernel's fast data path (toolkit/kernel/runtime/images.py, PIPELINE='fast') against the seed path,
both built as the kernel builds them: the same validation and test tensors for the same images (JPEG and PNG),
fallbacks, and the spec field."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from toolkit.core.errors import SpecError
from toolkit.specs.spec import build_spec

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("kernel_throughput", ROOT / "bench" / "kernel_throughput.py")
kt = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("kernel_throughput", kt)
_spec.loader.exec_module(kt)

TOL = 3 / 255  # PIL and torch's antialiased bilinear resize round differently by a level or two


def kernel(comp: Path, pipeline: str, item: str, batch: str, bs: int = 8):
    """The kernel's data loaders and learner (through its runtime modules) for one pipeline, no loader workers."""
    spec = build_spec({"arch": "resnet18", "competition": comp.name, "item": item, "batch": batch, "bs": bs,
                       "epochs": 1, "pretrained": False, "seed": 42, "pipeline": pipeline})
    with kt.kaggle_sandbox(comp):
        ns = kt.kernel_learner("resnet18", dict(workers=0), spec=spec)
        batches = dict(valid=list(ns.dls.valid), test=list(ns.dls.test_dl(ns.tst_files)),
                       train=next(iter(ns.dls.train)))
    return ns, batches


def assert_same_batches(seed_batches, fast_batches):
    import torch
    for name in ("valid", "test"):
        assert len(seed_batches[name]) == len(fast_batches[name]) > 0
        for s, f in zip(seed_batches[name], fast_batches[name]):
            assert s[0].shape == f[0].shape and s[0].dtype == f[0].dtype == torch.float32
            diff = (s[0] - f[0]).abs()
            assert diff.max() <= TOL, f"{name}: max |seed - fast| = {diff.max():.4f}"
            assert diff.mean() <= 0.5 / 255
            if name == "valid":
                assert torch.equal(s[1], f[1])  # same split, same labels, same order


@pytest.fixture(scope="module")
def jpeg_comp(tmp_path_factory):
    # Portrait JPEGs like Paddy's (60 wide x 80 high here), ten classes.
    return kt.build_competition(tmp_path_factory.mktemp("jpeg"), n_images=30, n_test=6, height=80, width=60)


@pytest.mark.parametrize("item", ["Resize(48)", "Resize(48, method='squish')", "Resize((40, 56))"])
def test_fast_path_matches_seed_on_jpegs(jpeg_comp, item):
    batch = "aug_transforms(size=32, min_scale=0.75)"
    seed_ns, seed_batches = kernel(jpeg_comp, "seed", item, batch)
    fast_ns, fast_batches = kernel(jpeg_comp, "fast", item, batch)
    assert seed_ns.pipeline == "seed" and fast_ns.pipeline == "fast"
    assert list(seed_ns.dls.vocab) == list(fast_ns.dls.vocab)
    assert [str(p) for p in seed_ns.dls.valid_ds.items] == [str(p) for p in fast_ns.dls.valid_ds.items]
    assert_same_batches(seed_batches, fast_batches)


def test_fast_path_matches_seed_on_pngs(tmp_path):
    from toolkit.competitions.demo import build_competition
    comp = build_competition(tmp_path, limit=60)
    args = ("Resize(24)", "aug_transforms(size=24, do_flip=False)")
    _, seed_batches = kernel(comp, "seed", *args)
    fast_ns, fast_batches = kernel(comp, "fast", *args)
    assert fast_ns.pipeline == "fast"
    assert_same_batches(seed_batches, fast_batches)


def test_training_batches_decode_with_random_crops(jpeg_comp):
    import torch
    _, batches = kernel(jpeg_comp, "fast", "Resize(48)", "aug_transforms(size=32, min_scale=0.75)")
    x, y = batches["train"]
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and len(y) == 8
    assert 0 <= float(x.min()) and float(x.max()) <= 1


def test_item_transforms_without_a_gpu_equivalent_fall_back_to_the_seed_path(jpeg_comp, capsys):
    ns, _ = kernel(jpeg_comp, "fast", "Resize(48, method='pad')", "aug_transforms(size=32)")
    assert ns.pipeline == "seed"
    assert "no GPU equivalent" in capsys.readouterr().out


def test_auto_is_the_seed_path_without_a_gpu(jpeg_comp):
    import torch
    ns, _ = kernel(jpeg_comp, "auto", "Resize(48)", "aug_transforms(size=32)")
    assert ns.pipeline == ("fast" if torch.cuda.is_available() else "seed")


def test_pipeline_is_a_checked_spec_field_in_the_content_hash():
    base = {"arch": "resnet18", "competition": "digits-demo"}
    assert build_spec(base).pipeline == "auto"
    hashes = {build_spec({**base, "pipeline": p}).content_hash for p in ("auto", "fast", "seed")}
    assert len(hashes) == 3
    with pytest.raises(SpecError) as info:
        build_spec({**base, "pipeline": "turbo"})
    assert "pipeline must be one of auto, fast, seed" in info.value.message
