"""Competition folders on this machine: finding them and checking their shape before anything runs."""

from __future__ import annotations

import csv
from pathlib import Path

from .errors import CompetitionError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
HIDDEN_FILES = {"solution.csv"}  # kept from kernels: it holds the test labels


def available(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    # Hidden folders (such as a build's leftover staging folder) are not competitions.
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def find_competition(root: Path, name: str) -> Path:
    """The folder of competition `name` under `root`, checked for the shape kernels expect."""
    path = root / name
    if not path.is_dir():
        known = available(root)
        hint = f"available: {', '.join(known)}" if known else "run `make demo` or put a competition folder there"
        raise CompetitionError(f"unknown competition '{name}' (no folder {path})", hint)
    check_competition(path)
    return path


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def check_competition(path: Path) -> None:
    train, test, sample = path / "train_images", path / "test_images", path / "sample_submission.csv"
    for needed in (train, test):
        if not needed.is_dir():
            raise CompetitionError(f"competition {path.name} has no {needed.name}/ folder",
                                   "expected train_images/<label>/<image>, test_images/, sample_submission.csv")
    classes = sorted(p for p in train.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise CompetitionError(f"{train} needs at least two class folders, found {len(classes)}")
    all_images = []
    for folder in classes:
        found = _images(folder)
        if not found:
            raise CompetitionError(f"class folder {folder} has no images", "remove it or add images")
        all_images.extend(found)
    if not sample.is_file():
        raise CompetitionError(f"competition {path.name} has no sample_submission.csv")
    test_images = _images(test)
    check_images(all_images + test_images)
    test_names = {p.relative_to(test).as_posix() for p in test_images}
    with open(sample, newline="") as fh:
        rows = list(csv.reader(fh))
    ids = {r[0] for r in rows[1:] if r}
    if test_names != ids:
        missing, extra = sorted(test_names - ids), sorted(ids - test_names)
        detail = f"{len(missing)} test images not in it" + (f" (e.g. {missing[0]})" if missing else "")
        detail += f", {len(extra)} ids without an image" + (f" (e.g. {extra[0]})" if extra else "")
        raise CompetitionError(f"{sample} does not match test_images/: {detail}")


# Decoding every image of a 10k-image competition would take seconds on each kpush, so small sets
# are verified whole and larger ones on an even sample; every image is checked for being empty.
VERIFY_ALL_UP_TO = 2000
VERIFY_SAMPLE = 200


def check_images(images: list[Path]) -> None:
    """Refuse empty files everywhere, and images PIL cannot read (all of them up to VERIFY_ALL_UP_TO,
    else an evenly spaced sample of VERIFY_SAMPLE), naming the first bad file."""
    for image in images:
        if image.stat().st_size == 0:
            raise CompetitionError(f"image {image} is empty", "replace or remove the file")
    if len(images) <= VERIFY_ALL_UP_TO:
        sample = images
    else:
        step = len(images) / VERIFY_SAMPLE
        sample = [images[int(i * step)] for i in range(VERIFY_SAMPLE)] + [images[-1]]
    from PIL import Image

    for image in sample:
        try:
            with Image.open(image) as img:
                img.verify()
        except Exception as exc:  # PIL raises many kinds for a bad file
            raise CompetitionError(f"image {image} cannot be read ({type(exc).__name__})",
                                   "replace or remove the file") from None


def public_entries(path: Path) -> list[Path]:
    """What a kernel sees of the competition: everything but the hidden labels."""
    return [p for p in sorted(path.iterdir()) if p.name not in HIDDEN_FILES and not p.name.startswith(".")]
