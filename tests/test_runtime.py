"""The code kernels run (toolkit/kernel/runtime/), as ordinary modules on the CPU with tiny images: inputs, the
data path, the learner, the epoch log, the outputs writer, the predicting ensemble's members and the pack runner;
and the rules that let them be pasted into notebooks (render.runtime_source)."""

from __future__ import annotations

import ast
import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from kaggle_imports import not_on_kaggle
from PIL import Image

from toolkit.kernel import contract
from toolkit.kernel.render import KERNEL_DIR, RUNTIME_DIR, _pasteable, runtime_source
from toolkit.kernel.runtime import epochs, images, inputs, learners, outputs, pack_runner, predictor

EXTENSIONS = [".bmp", ".gif", ".jpg", ".png", ".tif"]
MODULES = sorted(RUNTIME_DIR.glob("[!_]*.py")) + [KERNEL_DIR / "contract.py"]


def _image(path: Path, colour, size=(20, 16)) -> Path:
    """A small image, `size` (w, h), a colour and a bright corner so crops and resizes differ."""
    pixels = np.full((size[1], size[0], 3), colour, dtype=np.uint8)
    pixels[: size[1] // 3, : size[0] // 3] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="module")
def comp(tmp_path_factory) -> Path:
    """A competition of 2 classes x 8 PNGs and 4 test images (one in a subfolder)."""
    root = tmp_path_factory.mktemp("comp")
    for i in range(8):
        _image(root / "train_images" / "red" / f"r{i}.png", (200, 20 + i, 20))
        _image(root / "train_images" / "blue" / f"b{i}.png", (20, 20 + i, 200))
    for name in ("t0.png", "t1.png", "t2.png", "sub/t3.png"):
        _image(root / "test_images" / name, (120, 60, 90))
    return root


def tiny_dls(comp: Path, pipeline: str = "seed", item: str = "Resize(16)"):
    from fastai.vision.all import Resize, parent_label  # noqa: F401  (item strings name Resize)

    return images.image_dataloaders(comp / "train_images", lambda f: images.image_files(f, EXTENSIONS), parent_label,
                                    valid_pct=0.25, seed=1, bs=4, item_tfms=eval(item), batch_tfms=None,
                                    pipeline=pipeline, num_workers=0)


def images_of(comp: Path):
    return images.image_files(comp / "test_images", EXTENSIONS).sorted()


@pytest.fixture(scope="module")
def trained(comp):
    """A resnet18 fine-tuned one frozen and one unfrozen epoch (from scratch), and what it printed."""
    learn = learners.make_learner(tiny_dls(comp), "resnet18", pretrained=False)
    learn.add_cb(epochs.EpochLog())
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        learn.fine_tune(1, 1e-3)
    return learn, printed.getvalue()


def progress_of(text: str) -> list[dict]:
    return [r for r in map(contract.parse_progress, text.splitlines()) if r is not None]


# -- inputs ---------------------------------------------------------------------------------------------------

def test_find_input_in_the_current_and_flat_layouts_and_below(tmp_path, monkeypatch):
    for folder in ("competitions/comp", "flat", "datasets/someone-else/weights"):
        (tmp_path / "input" / folder).mkdir(parents=True)
        (tmp_path / "input" / folder / "file.txt").write_text("x")
    (tmp_path / "working").mkdir()
    monkeypatch.chdir(tmp_path / "working")
    assert inputs.find_input("competitions", "comp", "file.txt") == Path("../input/competitions/comp")
    assert inputs.find_input("notebooks", "owner/flat", "file.txt") == Path("../input/flat")
    found = inputs.input_file("datasets", "me/weights", "file.txt")  # under another owner
    assert found == Path("../input/datasets/someone-else/weights/file.txt")
    with pytest.raises(FileNotFoundError, match="input me/gone not found: no file.txt in ../input/datasets/me/gone "
                                                "or ../input/gone, nor in any folder named gone under ../input"):
        inputs.find_input("datasets", "me/gone", "file.txt")


# -- the data path --------------------------------------------------------------------------------------------

def test_decode_batch_on_the_cpu_reads_every_format_as_pil_does(tmp_path):
    paths = [_image(tmp_path / f"x{ext}", (10, 130, 250), size=(10, 6)) for ext in (".png", ".bmp", ".tif", ".gif")]
    decoded = images.decode_batch([p.read_bytes() for p in paths], torch.device("cpu"))
    for path, img in zip(paths, decoded):
        expected = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)
        assert img.dtype == torch.uint8 and torch.equal(img, expected), path.suffix
    jpeg = _image(tmp_path / "x.jpg", (10, 130, 250), size=(10, 6))
    [img] = images.decode_batch([jpeg.read_bytes()], torch.device("cpu"))
    pil = torch.from_numpy(np.array(Image.open(jpeg).convert("RGB"))).permute(2, 0, 1)
    assert img.shape == (3, 6, 10) and (img.int() - pil.int()).abs().max() <= 3


@pytest.mark.parametrize("method", ["crop", "squish"])
def test_gpu_resize_gives_fastai_resize_pixels_on_validation(comp, method):
    from fastai.vision.all import PILImage, Resize

    files = sorted((comp / "train_images" / "red").iterdir())[:3]
    resize = images.gpu_resize_for(Resize((12, 8), method=method))
    batch = resize(images.ByteBatch(images.ImageBytes.create(f) for f in files), split_idx=1)
    assert batch.shape == (3, 3, 12, 8) and batch.dtype == torch.uint8
    for f, fast in zip(files, batch):
        seed = Resize((12, 8), method=method)(PILImage.create(f), split_idx=1)
        seed = torch.from_numpy(np.array(seed)).permute(2, 0, 1)
        assert (fast.int() - seed.int()).abs().max() <= 3


def test_gpu_resize_only_for_one_bilinear_crop_or_squish_resize():
    from fastai.vision.all import Image as FastaiImage
    from fastai.vision.all import RandomResizedCrop, Resize

    made = images.gpu_resize_for([Resize((40, 56))])
    assert isinstance(made, images.GPUDecodeResize) and (made.h, made.w) == (40, 56)
    nearest = Resize(16, resamples=(FastaiImage.NEAREST, FastaiImage.NEAREST))
    for item in (None, Resize(16, method="pad"), [Resize(16), Resize(8)], RandomResizedCrop(16), nearest):
        assert images.gpu_resize_for(item) is None, item


def test_choose_pipeline(capsys):
    from fastai.vision.all import Resize

    assert images.choose_pipeline("auto", Resize(16), gpu=False) == ("seed", None)
    pipeline, resize = images.choose_pipeline("auto", Resize(16), gpu=True)
    assert pipeline == "fast" and isinstance(resize, images.GPUDecodeResize)
    assert images.choose_pipeline("fast", Resize(16), gpu=False)[0] == "fast"  # forced: the CPU decodes
    assert images.choose_pipeline("seed", Resize(16), gpu=True) == ("seed", None)
    assert images.choose_pipeline("fast", Resize(16, method="pad"), gpu=True) == ("seed", None)
    assert "no GPU equivalent for item transforms" in capsys.readouterr().out
    with pytest.raises(ValueError, match="pipeline must be one of auto, fast, seed, not 'turbo'"):
        images.choose_pipeline("turbo", Resize(16))


def test_fast_dataloaders_decode_each_batch(comp):
    dls = tiny_dls(comp, "fast")
    assert images.pipeline_of(dls) == "fast" and images.pipeline_of(tiny_dls(comp)) == "seed"
    x, y = next(iter(dls.train))
    assert x.shape == (4, 3, 16, 16) and x.dtype == torch.float32 and 0 <= float(x.min()) <= float(x.max()) <= 1
    assert list(dls.vocab) == ["blue", "red"] and len(y) == 4


# -- the learner ------------------------------------------------------------------------------------------------

def test_effective_precision():
    assert learners.effective_precision("fp16", gpu=False) == "fp32"  # mixed precision needs a GPU
    assert learners.effective_precision("bf16", gpu=True, bf16=False) == "fp16"  # a T4
    assert learners.effective_precision("bf16", gpu=True, bf16=True) == "bf16"
    assert learners.effective_precision("fp32", gpu=True) == "fp32"
    with pytest.raises(ValueError, match="precision must be one of fp32, fp16, bf16"):
        learners.effective_precision("fp8")


def test_make_learner(comp, capsys):
    from fastai.vision.all import GradientAccumulation, ProgressCallback

    dls = tiny_dls(comp)
    learn = learners.make_learner(dls, "resnet18", pretrained=False, accum=3, precision="bf16")
    assert "resnet18: 12 train / 4 valid images" in capsys.readouterr().out
    assert not any(isinstance(cb, ProgressCallback) for cb in learn.cbs)
    [accum] = [cb for cb in learn.cbs if isinstance(cb, GradientAccumulation)]
    assert accum.n_acc == 3 * 4  # fastai counts samples: 3 batches of 4
    assert learners.precision_of(learn) == "fp32" and not learners.is_channels_last(learn.model)  # no GPU here
    assert learners.precision_of(learn.to_fp16()) == "fp16"
    forced = learners.make_learner(dls, "resnet18", pretrained=False, channels_last=True)
    assert learners.is_channels_last(forced.model)


# -- the epoch log ------------------------------------------------------------------------------------------

def test_epoch_log_keeps_rows_and_prints_plain_and_progress_lines(trained):
    learn, printed = trained
    log = epochs.epoch_log(learn)
    assert [r["phase"] for r in log.rows] == ["frozen", "train"]  # fine_tune: frozen, then unfrozen
    assert all(set(r) == set(contract.EPOCH_KEYS) for r in log.rows)
    assert log.train_seconds >= sum(r["seconds"] for r in log.rows) > 0
    assert "frozen epoch  0  train_loss" in printed and " train epoch  0  train_loss" in printed
    lines = progress_of(printed)
    assert [(r["phase"], r["epoch"], r["epochs"]) for r in lines] == \
        [("frozen", None, 1), ("frozen", 0, 1), ("training", None, 1), ("training", 0, 1)]
    assert lines[3]["error_rate"] == log.rows[1]["error_rate"] and lines[3]["seconds"] == log.rows[1]["seconds"]


def test_an_unlogged_learner_is_refused_before_tta(comp):
    learn = learners.make_learner(tiny_dls(comp), "resnet18", pretrained=False)
    with pytest.raises(ValueError, match=r"the learner has no EpochLog: add one before fitting"):
        outputs.save_learner(learn, images_of(comp))


# -- the outputs -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved(trained, comp, tmp_path_factory):
    learn, _ = trained
    out = tmp_path_factory.mktemp("out") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        metrics = outputs.save_learner(learn, images_of(comp), test_root=comp / "test_images", out_dir=out,
                                       spec={"item": "Resize(16)", "batch": None},
                                       identity={"slug": "s", "spec_hash": "h"})
    return out, metrics, printed.getvalue()


def test_save_learner_writes_every_output_with_every_contract_key(saved):
    out, metrics, printed = saved
    assert sorted(p.name for p in out.iterdir()) == sorted(contract.TRAIN_OUTPUTS + contract.MODEL_OUTPUTS)
    tta = contract.check_tta(torch.load(out / "tta.pkl", weights_only=True))
    assert set(tta) == set(contract.TTA_KEYS)  # the writer writes every key the contract defines
    written = contract.check_metrics(json.loads((out / "metrics.json").read_text()))
    assert set(written) == set(contract.METRICS_KEYS) and written == metrics
    assert set(tta["metrics"]) == set(contract.METRICS_KEYS) - {"output_mb"}  # measured after tta.pkl
    info = contract.check_model_info(json.loads((out / "model.json").read_text()))
    assert set(info) == set(contract.MODEL_INFO_KEYS)
    assert tta["format"] == written["format"] == contract.FORMAT
    assert tta["files"] == ["sub/t3.png", "t0.png", "t1.png", "t2.png"]  # relative to test_images/, sorted
    assert all(f.split("/")[0] in ("red", "blue") for f in tta["valid_files"]) and len(tta["valid_files"]) == 4
    assert tta["vocab"] == info["vocab"] == ["blue", "red"] and tta["identity"] == info["identity"]
    assert (written["arch"], written["pipeline"], written["weights"], written["precision"]) == \
        ("resnet18", "seed", "none", "fp32")
    assert (written["n_train"], written["n_valid"], written["n_test"]) == (12, 4, 4)
    assert [r["phase"] for r in progress_of(printed)] == ["tta", "outputs"]
    assert "TTA error on the validation set" in printed


def test_the_predictor_rebuilds_the_saved_model(saved, trained, comp):
    out, _, _ = saved
    files = images_of(comp)
    learn = predictor.rebuild_learner(out, predictor.member_info(out), files, images.Resize(16), None, bs=4)
    trained_state = trained[0].model.state_dict()
    assert all(torch.equal(v, trained_state[k]) for k, v in learn.model.state_dict().items())
    predicted = predictor.predict_member(out, files, comp / "test_images", images.Resize(16), None, bs=4)
    assert predicted["files"] == ["sub/t3.png", "t0.png", "t1.png", "t2.png"] and predicted["vocab"] == ["blue", "red"]
    assert predicted["probs"].shape == (4, 2) and torch.allclose(predicted["probs"].sum(1), torch.ones(4))


# -- the pack runner ------------------------------------------------------------------------------------------

WRITES_OUTPUTS = ("from pathlib import Path\nimport os\nPath('{slug}').mkdir()\n"
                  "Path('{slug}/tta.pkl').write_text('x')\nprint('gpu', os.environ.get('CUDA_VISIBLE_DEVICES'))\n")


def test_pack_runs_members_in_turn_and_records_how_each_ended(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    members = {"good": WRITES_OUTPUTS.format(slug="good"),
               "bad": "print('loading')\nraise ValueError('bad input')\n",
               "quiet": "print('nothing written')\n",
               "killed": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"}
    results = pack_runner.run_pack(members, gpus=0)
    assert json.loads((tmp_path / "pack.json").read_text()) == results
    assert {slug: (r["status"], r["message"]) for slug, r in results.items()} == {
        "good": ("COMPLETE", ""), "bad": ("ERROR", "ValueError: bad input"), "quiet": ("ERROR", "exit code 0"),
        "killed": ("ERROR", "killed by signal 9 (out of memory?)")}
    printed = capsys.readouterr().out
    assert "4 runs on 0 GPU(s): one after another" in printed and "[good] gpu None" in printed
    assert "[bad] ValueError: bad input" in printed and "bad: ERROR: ValueError: bad input" in printed


def test_pack_runs_members_at_once_one_gpu_each(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    results = pack_runner.run_pack({s: WRITES_OUTPUTS.format(slug=s) for s in ("a", "b")}, gpus=2)
    assert [r["status"] for r in results.values()] == ["COMPLETE", "COMPLETE"]
    printed = capsys.readouterr().out
    assert "at once, one GPU each" in printed and "[a] gpu 0" in printed and "[b] gpu 1" in printed


def test_a_pack_whose_every_run_failed_fails(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError, match="every run failed: a: KeyError: 'x'"):
        pack_runner.run_pack({"a": "{}['x']\n"}, gpus=0)
    assert json.loads((tmp_path / "pack.json").read_text())["a"]["status"] == "ERROR"


# -- pasting ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_runtime_modules_follow_the_paste_rules(path):
    """Only what Kaggle's image has; no __future__ import (fastai reads annotations to dispatch); relative
    imports on one line at the top level, which pasting removes; and the pasted text compiles."""
    source = path.read_text()
    assert not_on_kaggle(source) == set(), path.name
    imports = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)]
    assert not any(n.module == "__future__" for n in imports)
    relative = [n for n in imports if n.level]
    assert all(n.col_offset == 0 and n.end_lineno == n.lineno for n in relative)
    pasted = runtime_source([path.stem])
    compile(pasted, path.name, "exec")
    assert not any(line.startswith(("from .", "from __future__")) for line in pasted.splitlines())


def test_runtime_source_pastes_each_module_once_after_what_it_imports():
    pasted = runtime_source(["outputs", "images"])
    order = [line.split("/")[-1].split(",")[0] for line in pasted.splitlines() if line.startswith("# -- toolkit/")]
    assert order == ["contract.py", "epochs.py", "images.py", "learners.py", "pretrained.py", "outputs.py"]
    body = _pasteable(RUNTIME_DIR / "images.py")[0]
    assert body in pasted  # verbatim but for the removed lines
    with pytest.raises(ValueError, match="no runtime module 'nonesuch'"):
        runtime_source(["nonesuch"])


def test_pasting_refuses_imports_it_cannot_remove(tmp_path):
    for text, reason in (("from .contract import (\n    FORMAT)\n", "must fit on one line"),
                         ("def f():\n    from .contract import FORMAT\n", "at the top level"),
                         ("x = 1\n# %% a cell marker\n", "would split the notebook's cell")):
        (tmp_path / "bad.py").write_text(text)
        with pytest.raises(ValueError, match=reason):
            _pasteable(tmp_path / "bad.py")


def test_no_runtime_name_is_one_fastai_exports():
    """A user's notebook may `from fastai.vision.all import *` after the toolkit's helpers are pasted in: a
    runtime function of the same name as one of fastai's would be replaced by fastai's."""
    import fastai.vision.all as fv

    for path in MODULES:
        tree = ast.parse(path.read_text())
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert not defined & set(dir(fv)), (path.name, defined & set(dir(fv)))
