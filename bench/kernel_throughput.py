"""Training-kernel throughput: the seed's data pipeline vs the toolkit's rendered kernel vs the model alone.

One run on one GPU:
  1. builds a synthetic Paddy-shaped competition (JPEGs 480 wide x 640 high, 10 classes, a learnable
     colour-and-shape task);
  2. for each architecture measures training images/s of
       (1) seed   - the seed's train() exactly: ImageDataLoaders.from_folder(item_tfms=Resize(480),
                    batch_tfms=aug_transforms(size=224, min_scale=0.75)), vision_learner(...).to_fp16();
       (2) kernel - the training kernel's data loaders and learner, built by the runtime modules the rendered
                    notebook calls (toolkit/kernel/runtime/: image_dataloaders, make_learner) with the fast
                    data path;
       (3) model  - the model alone: random GPU tensors, channels_last, fp16 autocast (the ceiling);
     with 4 loader workers (and, by default, the process pinned to 4 CPU cores like a Kaggle T4 x2 session);
  3. trains (1) and (2) for the same few epochs and reports validation and TTA errors ((2): the rendered
     notebook run whole, as on Kaggle, its metrics.json read back);
  4. prints one table and writes JSON under bench/results/.

GPU run (one command):  .venv/bin/python bench/kernel_throughput.py
CPU smoke test (tests/test_throughput.py runs it):  .venv/bin/python bench/kernel_throughput.py --cpu-tiny
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COMPETITION = "synthetic-paddy"
N_CLASSES = 10

GPU_DEFAULTS = dict(archs=["convnext_small_in22k", "vit_small_patch16_224"], n_images=3000, n_test=64,
                    height=640, width=480, item="Resize(480)", batch="aug_transforms(size=224, min_scale=0.75)",
                    size=224, bs=64, workers=4, cores=4, epochs=3, lr=0.002, warmup=6, steps=30)
CPU_TINY = dict(archs=["resnet18"], n_images=40, n_test=8, height=80, width=60, item="Resize(64)",
                batch="aug_transforms(size=64, min_scale=0.75)", size=64, bs=8, workers=0, cores=0, epochs=1,
                lr=0.002, warmup=1, steps=2)


# -- synthetic data ----------------------------------------------------------------------------

def _draw(args: tuple) -> None:
    """One image: noisy background and a class-coloured disc or square at a random place and size."""
    import numpy as np
    from PIL import Image, ImageDraw

    path, label, height, width, seed = args
    rng = np.random.default_rng(seed)
    base = rng.integers(60, 140, size=3)
    pixels = (base + rng.normal(0, 25, size=(height, width, 3))).clip(0, 255).astype("uint8")
    image = Image.fromarray(pixels)
    hue = [(220, 40, 40), (40, 200, 40), (40, 60, 220), (220, 200, 40), (200, 40, 200)][label % 5]
    colour = tuple(int(c + rng.integers(-30, 31)) for c in hue)
    r = int(min(height, width) * rng.uniform(0.12, 0.3))
    cx, cy = int(rng.integers(r, width - r)), int(rng.integers(r, height - r))
    draw = ImageDraw.Draw(image)
    (draw.ellipse if label < 5 else draw.rectangle)((cx - r, cy - r, cx + r, cy + r), fill=colour)
    image.save(path, quality=90)


def build_competition(root: Path, n_images: int, n_test: int, height: int, width: int, seed: int = 0) -> Path:
    """Paddy's shape: train_images/<label>/*.jpg, test_images/*.jpg, sample_submission.csv."""
    from concurrent.futures import ProcessPoolExecutor

    comp = root / COMPETITION
    jobs = []
    for i in range(n_images + n_test):
        label = i % N_CLASSES
        folder = comp / ("train_images" / Path(f"class{label}") if i < n_images else Path("test_images"))
        folder.mkdir(parents=True, exist_ok=True)
        jobs.append((folder / f"{100000 + i}.jpg", label, height, width, seed * 1_000_003 + i))
    with ProcessPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
        list(pool.map(_draw, jobs, chunksize=32))
    tests = sorted(p.name for p in (comp / "test_images").iterdir())
    (comp / "sample_submission.csv").write_text("image_id,label\n" + "".join(f"{t},class0\n" for t in tests))
    return comp


# -- the training kernel: its runtime modules, and the rendered notebook -----------------------------

@contextlib.contextmanager
def kaggle_sandbox(comp: Path):
    """A Kaggle-shaped run directory (input/competitions/<competition>, working/) as the cwd, where the kernel's
    relative input paths resolve."""
    run = Path(tempfile.mkdtemp(prefix="kbench-run-"))
    (run / "input" / "competitions").mkdir(parents=True)
    (run / "working").mkdir()
    (run / "input" / "competitions" / comp.name).symlink_to(comp.resolve())
    old_cwd = Path.cwd()
    os.chdir(run / "working")
    try:
        yield run / "working"
    finally:
        os.chdir(old_cwd)


def run_notebook(spec) -> types.ModuleType:
    """The rendered training notebook's code cells, run as a kernel would, in one module registered in
    sys.modules (so loader workers can pickle the classes it defines, as they can in a kernel's __main__)."""
    from toolkit.kernel.render import render_train_notebook

    namespace = types.ModuleType(f"kernel_{len(sys.modules)}_{time.monotonic_ns()}")
    sys.modules[namespace.__name__] = namespace
    for cell in render_train_notebook(spec).cells:
        if cell.cell_type == "code":
            exec(compile(cell.source, f"<{namespace.__name__}>", "exec"), namespace.__dict__)
    return namespace


@contextlib.contextmanager
def loader_workers(n: int):
    """fastai's default num_workers (4 on a Kaggle T4 x2) set to `n` while loaders are built; they keep it."""
    import fastai.torch_core

    cpus, fastai.torch_core.defaults.cpus = fastai.torch_core.defaults.cpus, n
    try:
        yield
    finally:
        fastai.torch_core.defaults.cpus = cpus


def kernel_spec(arch: str, cfg: dict, pipeline: str, epochs: int | None = None):
    from toolkit.specs.spec import build_spec

    return build_spec({"arch": arch, "competition": COMPETITION, "item": cfg["item"], "batch": cfg["batch"],
                       "bs": cfg["bs"], "epochs": epochs or cfg["epochs"], "lr": cfg["lr"], "pretrained": False,
                       "precision": "fp16", "seed": 42, "pipeline": pipeline})


# -- the seed's train(), exactly ----------------------------------------------------------------

def seed_learner(comp: Path, arch: str, cfg: dict):
    """The seed's train() (paddy-doctor-part-3): from_folder + vision_learner(...).to_fp16()."""
    import fastai.vision.all as fv
    from fastai.vision.all import ImageDataLoaders, ProgressCallback, error_rate, noop, vision_learner

    item, batch = eval(cfg["item"], vars(fv)), eval(cfg["batch"], vars(fv))
    dls = ImageDataLoaders.from_folder(comp / "train_images", seed=42, valid_pct=0.2, item_tfms=item,
                                       batch_tfms=batch, bs=cfg["bs"], num_workers=cfg["workers"])
    learn = vision_learner(dls, arch, metrics=error_rate, pretrained=False)
    if fv.torch.cuda.is_available():
        learn = learn.to_fp16()
    learn.remove_cb(ProgressCallback)
    learn.logger = noop
    return dls, learn


def kernel_learner(arch: str, cfg: dict, pipeline: str = "fast", epochs: int | None = None, spec=None):
    """The training kernel's data loaders and learner, built as its dataloaders and learner blocks build them
    (the same runtime calls on the same parameters), loaders with cfg['workers'] workers. Run inside
    kaggle_sandbox: the kernel's input paths are relative to its working directory. Returns a namespace of
    spec, dls, learn, pipeline and tst_files (the sorted test images)."""
    import fastai.vision.all as fv

    from toolkit.competitions.files import IMAGE_EXTENSIONS
    from toolkit.kernel.runtime import images, inputs, learners

    spec = spec or kernel_spec(arch, cfg, pipeline, epochs)
    path = inputs.find_input("competitions", spec.competition, "sample_submission.csv")
    extensions = sorted(IMAGE_EXTENSIONS)
    tst_files = images.image_files(path / "test_images", extensions).sorted()
    item_tfms, batch_tfms = (eval(text or "None", vars(fv)) for text in (spec.item, spec.batch))
    with loader_workers(cfg["workers"]):
        dls = images.image_dataloaders(path / "train_images", lambda f: images.image_files(f, extensions),
                                       fv.parent_label, spec.valid_pct, spec.seed, spec.bs, item_tfms, batch_tfms,
                                       spec.pipeline)
    learn = learners.make_learner(dls, spec.arch, pretrained=spec.pretrained, accum=spec.accum,
                                  precision=spec.precision)
    return types.SimpleNamespace(spec=spec, dls=dls, learn=learn, pipeline=images.pipeline_of(dls),
                                 tst_files=tst_files)


# -- measurements --------------------------------------------------------------------------------

def time_fit(learn, warmup: int, steps: int, bs: int) -> float:
    """Training images/s of learn.fit over `steps` batches after `warmup` batches (loader pipeline included)."""
    import torch
    from fastai.callback.core import Callback, CancelFitException

    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)

    class Clock(Callback):
        order = 100

        def before_fit(self):
            self.n, self.start = 0, None

        def after_batch(self):
            if not self.training:
                return
            self.n += 1
            if self.n == warmup:
                sync()
                self.start = time.perf_counter()
            if self.n == warmup + steps:
                sync()
                self.seconds = time.perf_counter() - self.start
                raise CancelFitException()

    need = warmup + steps
    if len(learn.dls.train) < need:
        raise SystemExit(f"need {need} training batches per epoch, have {len(learn.dls.train)}: more --n-images")
    clock = Clock()
    learn.fit(1, 1e-4, cbs=[clock])
    return steps * bs / clock.seconds


def model_only(arch: str, cfg: dict) -> float:
    """Images/s of forward+backward+step on random tensors already on the device (fp16, channels_last)."""
    import timm
    import torch

    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    model = timm.create_model(arch, pretrained=False, num_classes=N_CLASSES).to(device)
    if gpu:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(enabled=gpu)
    x = torch.randn(cfg["bs"], 3, cfg["size"], cfg["size"], device=device)
    if gpu:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, N_CLASSES, (cfg["bs"],), device=device)
    sync = torch.cuda.synchronize if gpu else (lambda: None)

    def step():
        with torch.autocast(device.type, dtype=torch.float16, enabled=gpu):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(cfg["warmup"]):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(cfg["steps"]):
        step()
    sync()
    rate = cfg["steps"] * cfg["bs"] / (time.perf_counter() - start)
    return rate


def train_errors(learn, dls, epochs: int, lr: float) -> dict:
    """fit_one_cycle (the seed's from-scratch branch), then validation error and TTA error."""
    from fastai.vision.all import error_rate

    start = time.perf_counter()
    learn.fit_one_cycle(epochs, lr)
    seconds = time.perf_counter() - start
    valid_error = float(learn.recorder.values[-1][2])
    probs, targets = learn.tta(dl=dls.valid)
    return dict(valid_error=valid_error, tta_error=float(error_rate(probs, targets)), train_seconds=seconds)


def free_gpu() -> None:
    import gc

    import torch
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def bench_arch(comp: Path, arch: str, cfg: dict, skip_train: bool) -> dict:
    from toolkit.kernel.contract import METRICS_FILE, check_metrics

    row: dict = dict(arch=arch)
    dls, learn = seed_learner(comp, arch, cfg)
    row["seed_img_s"] = time_fit(learn, cfg["warmup"], cfg["steps"], cfg["bs"])
    del dls, learn
    free_gpu()

    with kaggle_sandbox(comp):
        ns = kernel_learner(arch, cfg)
        row["kernel_pipeline"] = ns.pipeline
        row["kernel_img_s"] = time_fit(ns.learn, cfg["warmup"], cfg["steps"], cfg["bs"])
    del ns
    free_gpu()

    row["model_img_s"] = model_only(arch, cfg)
    free_gpu()
    row["kernel_vs_seed"] = row["kernel_img_s"] / row["seed_img_s"]
    row["kernel_vs_model"] = row["kernel_img_s"] / row["model_img_s"]

    if not skip_train:
        dls, learn = seed_learner(comp, arch, cfg)
        row["seed_train"] = train_errors(learn, dls, cfg["epochs"], cfg["lr"])
        del dls, learn
        free_gpu()
        # The rendered notebook end to end, as on Kaggle: its own training, TTA and metrics.json.
        with kaggle_sandbox(comp) as working, loader_workers(cfg["workers"]):
            ns = run_notebook(kernel_spec(arch, cfg, "fast"))
            metrics = check_metrics(json.loads((working / METRICS_FILE).read_text()))
        row["kernel_train"] = dict(valid_error=metrics["valid_error"], tta_error=metrics["tta_error"],
                                   train_seconds=metrics["train_seconds"])
        del ns
        free_gpu()
    return row


def table(rows: list[dict]) -> str:
    head = (f"{'arch':<24} {'seed img/s':>10} {'kernel img/s':>12} {'model img/s':>11} {'kern/seed':>9} "
            f"{'kern/model':>10}  {'seed val/tta err':>16}  {'kernel val/tta err':>18}")
    lines = [head, "-" * len(head)]
    for r in rows:
        def errs(key):
            t = r.get(key)
            return f"{t['valid_error']:.3f}/{t['tta_error']:.3f}" if t else "-"
        lines.append(f"{r['arch']:<24} {r['seed_img_s']:>10.1f} {r['kernel_img_s']:>12.1f} {r['model_img_s']:>11.1f} "
                     f"{r['kernel_vs_seed']:>9.2f} {r['kernel_vs_model']:>10.2f}  {errs('seed_train'):>16}  "
                     f"{errs('kernel_train'):>18}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu-tiny", action="store_true", help="a few dozen small images, resnet18 at 64px, 1 epoch")
    parser.add_argument("--arch", action="append", help="timm architecture (repeatable)")
    for key in ("n_images", "bs", "workers", "cores", "epochs", "steps", "warmup"):
        parser.add_argument(f"--{key.replace('_', '-')}", type=int)
    parser.add_argument("--no-train", action="store_true", help="throughput only")
    parser.add_argument("--data", type=Path, help="reuse or build the synthetic competition under this folder")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)

    cfg = dict(CPU_TINY if args.cpu_tiny else GPU_DEFAULTS)
    for key in ("n_images", "bs", "workers", "cores", "epochs", "steps", "warmup"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.arch:
        cfg["archs"] = args.arch
    if cfg["cores"] and hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > cfg["cores"]:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cfg["cores"]])  # a Kaggle T4 x2 has 4 cores

    import torch
    if not args.cpu_tiny and not torch.cuda.is_available():
        raise SystemExit("no GPU: the full bench measures GPU throughput; use --cpu-tiny for the CPU smoke run")

    data_root = args.data or Path(tempfile.mkdtemp(prefix="kbench-data-"))
    comp = data_root / COMPETITION
    start = time.perf_counter()
    if not (comp / "sample_submission.csv").exists():
        build_competition(data_root, cfg["n_images"], cfg["n_test"], cfg["height"], cfg["width"])
    data_seconds = time.perf_counter() - start

    rows = []
    for arch in cfg["archs"]:
        rows.append(bench_arch(comp, arch, cfg, args.no_train))
        print(f"{arch} done", flush=True)

    import fastai
    import timm
    gpu = torch.cuda.is_available()
    result = dict(
        mode="cpu-tiny" if args.cpu_tiny else "gpu", config=cfg, rows=rows, data_seconds=data_seconds,
        cpu_cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        gpu_name=torch.cuda.get_device_name(0) if gpu else None,
        versions=dict(python=platform.python_version(), torch=str(torch.__version__), fastai=fastai.__version__,
                      timm=timm.__version__),
        targets=dict(kernel_vs_seed=3.0, kernel_vs_model=0.8),
    )
    print(table(rows))
    if not args.cpu_tiny:
        ok = all(r["kernel_vs_seed"] >= 3.0 and r["kernel_vs_model"] >= 0.8 for r in rows)
        print(f"targets (kernel/seed >= 3.0, kernel/model >= 0.8): {'met' if ok else 'NOT met'}")
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"kernel-throughput-{result['mode']}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    (args.out / name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out / name}")
    return result


if __name__ == "__main__":
    main()
