"""How long a run will take on this machine, said before the local backend starts it.

From finished runs on record (same arch, transforms and batch size: their minutes per epoch); else a
bound that holds for any architecture (pixels x images x a large model's cost per pixel), when that
is short; else measured: training steps of the model at the run's image size on this machine, scaled
to the competition's image count. Rough by design, but it tells a one-minute run from a six-hour one
before the hours are spent, and imports torch and timm only when it has to measure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from toolkit.runs.costs.estimate import FASTAI_BS, TTA_EPOCHS, passes
from toolkit.runs.costs.estimate import estimate as recorded
from toolkit.specs.spec import RunSpec
from toolkit.specs.transforms import image_size

TTA_PASSES = 5  # fastai's tta(): four augmented passes and a plain one, over validation and test sets
LOAD_S_PER_IMAGE = 0.002  # decoding and augmenting one small image on a CPU, roughly
START_MIN = 0.3  # starting the notebook kernel and importing fastai (about 15 s here)
LONG_MIN = 10.0  # from here on, say how to run it elsewhere and how to stop it
# A training step's CPU seconds per input pixel for a large model (convnext_small on two busy cores: 5e-5).
WORST_S_PER_PIXEL = 2e-4
# How far off each kind of figure may be (tests/test_duration.py holds the demo's runs to the measured one).
SURE_RECORDED = "likely within 20%"
SURE_MEASURED = "likely within 2x"
MEASURE_BS = 32  # per-image cost falls with the batch: at 4 images a step it was 3.7x the cost at 32
THREAD_EFFICIENCY = 0.6  # n threads run a step about n**0.6 times faster than one (2 cores: 1.5x)
FASTAI_VALID_PCT = 0.2  # what fastai holds out where a template sets its own split


@dataclass(frozen=True)
class Duration:
    minutes: float | None
    how: str  # where the figure comes from
    bound: bool = False  # an upper bound for any architecture, not a figure for this one
    sure: str = ""  # how far off it may be, from how it was made


def estimate(project, spec: RunSpec, cache: dict | None = None, say=None) -> Duration:
    """How long `spec` takes on this machine; `say` hears of a measurement before it starts (seconds)."""
    on_record = recorded(project, [spec])[0]
    if on_record.measured:
        return Duration(START_MIN + (passes(spec) + TTA_EPOCHS) * on_record.minutes_per_epoch,
                        "from finished runs of the same arch, transforms and batch size", sure=SURE_RECORDED)
    if spec.epochs is None:
        return Duration(None, "its template sets its own epochs")
    cache = {} if cache is None else cache  # measurements and image counts, shared across a sweep's runs
    root = project.config.resolve(project.config.competitions_root) / spec.competition
    if root not in cache:
        cache[root] = (_counts(root), _native_size(root))
    counts, native = cache[root]
    size = image_size(spec.item, spec.batch) or native
    if not counts[0] or size is None:
        return Duration(None, "no images to measure with")
    worst = _minutes(spec, counts, WORST_S_PER_PIXEL * size[0] * size[1], WORST_S_PER_PIXEL * size[0] * size[1] / 3)
    if worst < LONG_MIN:
        return Duration(worst, f"a bound for any arch at {size[0]}x{size[1]} px, {counts[0]} training images", True)
    key = (spec.arch, size, spec.bs or FASTAI_BS)
    if key not in cache:
        if say is not None:
            say(f"timing a few training steps of {spec.arch} at {size[0]}x{size[1]} px to estimate how long it takes")
        cache[key] = _step_seconds(*key)
    if cache[key] is None:
        return Duration(None, f"{spec.arch} could not be measured here")
    train_s, infer_s, device = cache[key]
    return Duration(_minutes(spec, counts, train_s, infer_s),
                    f"measured: {spec.arch} at {size[0]}x{size[1]} px on this machine's {device}, "
                    f"{counts[0]} training images", sure=SURE_MEASURED)


def durations(project, recorded: list, planned: list, say=None) -> list[tuple[str, Duration]]:
    """(slug, Duration) of each newly recorded run of `planned`, measuring each arch and size once."""
    specs = {item.spec.slug: item.spec for item in planned}
    cache: dict = {}
    return [(run.slug, estimate(project, specs[run.slug], cache, say)) for run, action in recorded
            if action == "new" and run.slug in specs]


def _minutes(spec: RunSpec, counts: tuple[int, int], train_s: float, infer_s: float) -> float:
    """Training passes over the training split, validation after each, then TTA on validation and test."""
    n_valid = counts[0] * (spec.valid_pct if spec.valid_pct is not None else FASTAI_VALID_PCT)
    n_train = counts[0] - n_valid
    epoch = n_train * (train_s + LOAD_S_PER_IMAGE) + n_valid * (infer_s + LOAD_S_PER_IMAGE)
    tta = TTA_PASSES * (n_valid + counts[1]) * (infer_s + LOAD_S_PER_IMAGE)
    return START_MIN + (passes(spec) * epoch + tta) / 60


def describe(slug: str, duration: Duration) -> str:
    if duration.minutes is None:
        return f"{slug}: no estimate of how long it takes here ({duration.how})"
    about = "at most" if duration.bound else "about"
    sure = f", {duration.sure}" if duration.sure else ""
    return f"{slug}: {about} {_human(duration.minutes)} on this machine{sure} ({duration.how})"


def total_line(durations: list[tuple[str, Duration]]) -> str:
    """One line for many runs: their sum, and the longest."""
    known = [(d.minutes, slug) for slug, d in durations if d.minutes is not None]
    if not known:
        return f"{len(durations)} runs: no estimate of how long they take here"
    longest = max(known)
    unknown = len(durations) - len(known)
    return (f"{len(durations)} runs: about {_human(sum(m for m, _ in known))} of training in all on this machine "
            f"(longest: {longest[1]}, {_human(longest[0])})"
            + (f"; {unknown} not estimated" if unknown else ""))


def _human(minutes: float) -> str:
    if minutes < 1.5:
        return f"{max(10, round(minutes * 6) * 10)} seconds"
    if minutes < 90:
        return f"{minutes:.0f} minutes"
    return f"{minutes / 60:.1f} hours"


def _images(folder: Path) -> list[Path]:
    from toolkit.competitions.files import image_files  # the kernels' definition of an image

    return image_files(folder)


def _counts(root: Path) -> tuple[int, int]:
    return len(_images(root / "train_images")), len(_images(root / "test_images"))


def _native_size(root: Path) -> tuple[int, int] | None:
    from PIL import Image

    for image in _images(root / "train_images")[:1]:
        with Image.open(image) as img:
            return img.height, img.width
    return None


def _step_seconds(arch: str, size: tuple[int, int], bs: int) -> tuple[float, float, str] | None:
    """Seconds per image for a training step and for inference at the run's batch size (up to MEASURE_BS),
    the best of a few steps after one that pays for allocation. On a CPU the steps run on one thread and are
    timed in that thread's CPU time, which a kernel training meanwhile on the same cores cannot inflate (wall
    time under such contention came out 15x too long), then scaled to the cores the kernel will use."""
    try:
        import warnings

        warnings.filterwarnings("ignore")  # timm's notes on renamed models are not for this user
        import timm
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        threads = torch.get_num_threads()
        if device == "cpu":
            torch.set_num_threads(1)
        try:
            train_s, infer_s = _time_steps(torch, timm.create_model(arch, pretrained=False, num_classes=10).to(device),
                                           torch.randn(min(bs, MEASURE_BS), 3, *size, device=device), device)
        finally:
            torch.set_num_threads(threads)
    except Exception:  # an arch that cannot run at this size here: the kernel will say why
        return None
    if device == "cuda":
        return train_s, infer_s, "GPU"
    speedup = threads ** THREAD_EFFICIENCY  # measured here: 2 threads ran 1.3x to 1.7x faster than one
    return train_s / speedup, infer_s / speedup, f"CPU ({threads} cores)"


def _time_steps(torch, model, batch, device: str) -> tuple[float, float]:
    """(training, inference) seconds per image of `batch`: on a GPU wall time, on a CPU this thread's CPU time."""
    clock = time.perf_counter if device == "cuda" else time.thread_time
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    steps = []
    for _ in range(4):
        start = clock()
        model(batch).float().mean().backward()
        optimizer.step()
        optimizer.zero_grad()
        _sync(torch, device)
        steps.append((clock() - start) / len(batch))
    model.eval()
    with torch.no_grad():
        start = clock()
        model(batch)
        _sync(torch, device)
        infer_s = (clock() - start) / len(batch)
    return min(steps[1:]), infer_s


def _sync(torch, device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
