"""Minutes per epoch known before anything ran on this backend: the seed's measured figures.

The seed (Paddy Doctor, Road to the Top Part 2 / Live Coding 10, its results table "Minutes per epoch (First
Run)") trained these 13 runs with fastai's fine_tune at fp16 on the Paddy Doctor competition: 10,407 training
images (its train.csv), 20% held out. The seed does not name its GPU: these figures stand for the backend's GPUs
only until a run of the same arch, transforms and batch size has finished there, whose own figure replaces them.
They are also what `cost_model` calibrates timm's benchmark tables on, and what it scales for the same arch at
another size or batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.specs.transforms import image_size, parse_transforms

SEED_IMAGES = 10407  # Paddy Doctor's train.csv rows, which the seed's epochs went through
SOURCE = "the seed's measured minutes per epoch (Paddy Doctor, 10,407 images)"

# (arch, item transforms, batch transforms, batch size) -> minutes per epoch, as the seed's table has them.
_SEED_ROWS = [
    ("convnext_small_in22k", "Resize((640,480))", "aug_transforms(size=(288,224), min_scale=0.75)", 64, "01:51"),
    ("convnext_small_in22k", "Resize((640,480))", "aug_transforms(size=(320,240), min_scale=0.75)", 64, "02:07"),
    ("convnext_small_in22k", "Resize(480, method='squish')", "aug_transforms(size=224, min_scale=0.75)", 64, "01:30"),
    ("convnext_small_in22k", "Resize(480)", "aug_transforms(size=224, min_scale=0.75)", 64, "01:29"),
    ("vit_small_patch16_224", "Resize(480)", "aug_transforms(size=224, min_scale=0.75)", 64, "00:44"),
    ("vit_small_patch16_224", "Resize(480, method='squish')", "aug_transforms(size=224, min_scale=0.75)", 64, "00:47"),
    ("vit_small_patch16_224", "Resize(640, method=ResizeMethod.Pad, pad_mode=PadMode.Zeros)",
     "aug_transforms(size=224, min_scale=0.75)", 64, "00:50"),
    ("swinv2_base_window12_192_22k", "Resize(480, method='squish')", "aug_transforms(size=192, min_scale=0.75)", 64,
     "02:30"),
    # The seed ran these two with accum=True, which in its train() meant bs=16.
    ("swinv2_base_window12_192_22k", "Resize(640, method=ResizeMethod.Pad, pad_mode=PadMode.Zeros)",
     "aug_transforms(size=192, min_scale=0.75)", 16, "03:27"),
    ("swinv2_base_window12_192_22k", "Resize(480)", "aug_transforms(size=192, min_scale=0.75)", 16, "03:22"),
    ("swin_small_patch4_window7_224", "Resize(480, method='squish')", "aug_transforms(size=224, min_scale=0.75)", 64,
     "01:48"),
    ("swin_small_patch4_window7_224", "Resize(480)", "aug_transforms(size=224, min_scale=0.75)", 64, "01:47"),
    ("swin_small_patch4_window7_224", "Resize(640, method=ResizeMethod.Pad, pad_mode=PadMode.Zeros)",
     "aug_transforms(size=224, min_scale=0.75)", 64, "01:54"),
]


@dataclass(frozen=True)
class Prior:
    arch: str
    item: str
    batch: str
    bs: int
    minutes_per_epoch: float

    @property
    def size(self) -> tuple[int, int] | None:
        return image_size(self.item, self.batch)


def _minutes(clock: str) -> float:
    minutes, seconds = clock.split(":")
    return int(minutes) + int(seconds) / 60


PRIORS = [Prior(arch, parse_transforms(item, "item"), parse_transforms(batch, "batch"), bs, _minutes(clock))
          for arch, item, batch, bs, clock in _SEED_ROWS]


@dataclass(frozen=True)
class Found:
    minutes_per_epoch: float  # for SEED_IMAGES images
    how: str = "seed"


def lookup(arch: str, item: str, batch: str, bs: int) -> Found | None:
    """The seed's figure for exactly this run (arch, transforms and batch size); None when it has no such row."""
    exact = [p for p in PRIORS if (p.arch, p.item, p.batch, p.bs) == (arch, item, batch, bs)]
    return Found(exact[0].minutes_per_epoch) if exact else None
