"""Competition folders on this machine: finding them and checking their shape before anything runs."""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from pathlib import Path

from .errors import CompetitionError

# What counts as an image, for this check and for the kernels (which pass it to fastai's get_files):
# lowercase suffixes that PIL decodes and fastai reads. fastai's own default comes from the platform's
# mimetypes, so it differs between machines and lists formats PIL cannot open (.svg); .heic and .avif
# are left out because they need Pillow plugins that a kernel's image may lack.
IMAGE_EXTENSIONS = frozenset({".bmp", ".gif", ".jfif", ".jpe", ".jpeg", ".jpg", ".pbm", ".pgm", ".png", ".pnm",
                              ".ppm", ".tif", ".tiff", ".webp"})
HIDDEN_TEST = "hidden_test"  # a code competition's hidden test set: kernels meet it only in a submission's rerun
HIDDEN_FILES = {"solution.csv", HIDDEN_TEST}  # kept from kernels: the test labels, the hidden test set
# PIL modes that fastai's convert('RGB') flattens: 16/32-bit integer and float pixels are clipped at 255.
WIDE_MODES = ("I", "F")


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


def is_image(name: str) -> bool:
    """Whether fastai's get_files(..., extensions=IMAGE_EXTENSIONS) lists a file of this name: not hidden,
    and the text after its last dot (fastai's rule, not Path.suffix) is one of IMAGE_EXTENSIONS."""
    return not name.startswith(".") and "." + name.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS


def image_files(folder: Path) -> list[Path]:
    """The images fastai finds under `folder`, sorted: recursive, following links, skipping hidden folders
    (such as .ipynb_checkpoints) and hidden or non-image files, as fastai's get_files does."""
    found = []
    for parent, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(parent) / name for name in files if is_image(name))
    return sorted(found)


def check_competition(path: Path) -> None:
    train, test, sample = path / "train_images", path / "test_images", path / "sample_submission.csv"
    for needed in (train, test):
        if not needed.is_dir():
            raise CompetitionError(f"competition {path.name} has no {needed.name}/ folder",
                                   "expected train_images/<label>/<image>, test_images/, sample_submission.csv")
    train_images = _train_images(train)
    if not sample.is_file():
        raise CompetitionError(f"competition {path.name} has no sample_submission.csv")
    test_images = image_files(test)
    if not test_images:
        raise CompetitionError(f"{test} has no images",
                               f"put the test images there, as files ending in {', '.join(sorted(IMAGE_EXTENSIONS))}")
    check_images(train_images + test_images)
    _match_ids(test, test_images, sample)
    if (path / HIDDEN_TEST).exists():
        _check_hidden_test(path / HIDDEN_TEST)


def _match_ids(test: Path, test_images: list[Path], sample: Path) -> None:
    test_names = {p.relative_to(test).as_posix() for p in test_images}
    ids = set(sample_ids(sample))
    if test_names != ids:
        missing, extra = sorted(test_names - ids), sorted(ids - test_names)
        detail = f"{len(missing)} test images not in it" + (f" (e.g. {missing[0]})" if missing else "")
        detail += f", {len(extra)} ids without an image" + (f" (e.g. {extra[0]})" if extra else "")
        raise CompetitionError(f"{sample} does not match test_images/: {detail}")


def _check_hidden_test(hidden: Path) -> None:
    """hidden_test/ is checked like the public test set: test_images/ whose names are the ids of its own
    sample_submission.csv (and of solution.csv, when it has one to score with)."""
    test, sample, solution = hidden / "test_images", hidden / "sample_submission.csv", hidden / "solution.csv"
    if not test.is_dir() or not sample.is_file():
        raise CompetitionError(f"{hidden} needs test_images/ and sample_submission.csv",
                               "a code competition's hidden test set has the public test set's shape")
    images = image_files(test)
    if not images:
        raise CompetitionError(f"{test} has no images", "put the hidden test images there")
    check_images(images)
    _match_ids(test, images, sample)
    if solution.is_file() and set(sample_ids(solution)) != set(sample_ids(sample)):
        raise CompetitionError(f"{solution} does not list the ids of {sample}", "give one label per hidden test image")


def _train_images(train: Path) -> list[Path]:
    """Every training image, refusing what fastai would label wrongly: its label (`parent_label`) is the
    folder the image sits in, so only train_images/<label>/<image> gives the intended classes."""
    images = image_files(train)
    misplaced = [p for p in images if len(p.relative_to(train).parts) != 2]
    if misplaced:
        first, more = misplaced[0], f" (and {len(misplaced) - 1} more)" if len(misplaced) > 1 else ""
        where = "directly in train_images/" if first.parent == train else "in a sub-folder of a class folder"
        raise CompetitionError(f"image {first} is {where}{more}: fastai would label it '{first.parent.name}'",
                               "the label is the folder directly under train_images/: "
                               "move images to train_images/<label>/<image>")
    folders = sorted(p for p in train.iterdir() if p.is_dir() and not p.name.startswith("."))
    labelled = {p.parent for p in images}
    for folder in folders:
        if folder not in labelled:
            raise CompetitionError(f"class folder {folder} has no images", "remove it or add images")
    if len(folders) < 2:
        raise CompetitionError(f"{train} needs at least two class folders, found {len(folders)}")
    return images


def sample_ids(sample: Path) -> list[str]:
    """The ids of sample_submission.csv in row order, refusing what the ensemble kernel could not use:
    text that is not UTF-8, a header without an id and a label column, an id listed twice."""
    try:
        text = sample.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:  # NULs: UTF-16 text of ASCII ids still decodes as UTF-8
        raise CompetitionError(f"{sample} is not UTF-8 text", "save it as UTF-8 CSV with the header image_id,label")
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    except csv.Error as exc:
        raise CompetitionError(f"{sample} is not valid CSV: {exc}",
                               "save it as CSV with the header image_id,label") from None
    if not rows or len(rows[0]) < 2:
        raise CompetitionError(f"{sample} needs a header with an id column and a label column",
                               "its first line should be image_id,label")
    ids = [r[0] for r in rows[1:]]
    twice = [i for i, n in Counter(ids).items() if n > 1]
    if twice:
        raise CompetitionError(f"{sample} lists id '{twice[0]}' more than once"
                               + (f" ({len(twice) - 1} more ids too)" if len(twice) > 1 else ""),
                               "keep one row per test image")
    return ids


# Decoding every image of a 10k-image competition would take seconds on each kpush, so small sets
# are decoded whole and larger ones on an even sample; every image is checked for being empty.
VERIFY_ALL_UP_TO = 2000
VERIFY_SAMPLE = 200


def check_images(images: list[Path]) -> None:
    """Refuse empty files everywhere, and images that fastai would fail on or misread (all of them up to
    VERIFY_ALL_UP_TO, else an evenly spaced sample of VERIFY_SAMPLE), naming the first bad file."""
    for image in images:
        try:
            empty = image.stat().st_size == 0
        except OSError as exc:  # a broken link, a file removed meanwhile
            raise CompetitionError(f"image {image} cannot be read: {exc.strerror}",
                                   "replace or remove the file") from None
        if empty:
            raise CompetitionError(f"image {image} is empty", "replace or remove the file")
    if len(images) <= VERIFY_ALL_UP_TO:
        sample = images
    else:
        step = len(images) / VERIFY_SAMPLE
        sample = [images[int(i * step)] for i in range(VERIFY_SAMPLE)] + [images[-1]]
    for image in sample:
        check_image(image)


def check_image(image: Path) -> None:
    """Decode one image as the kernel will. verify() alone misses a truncated JPEG, so the pixels are
    loaded too (a JPEG at 1/8 scale, which still reads every byte); 16-bit and float images are refused
    because fastai's convert('RGB') would clip them to white."""
    from PIL import Image

    try:
        with Image.open(image) as img:
            img.verify()
        with Image.open(image) as img:
            mode = img.mode
            img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
    except Exception as exc:  # PIL raises many kinds for a bad file
        raise CompetitionError(f"image {image} cannot be read: {_reason(exc, image)}",
                               "replace or remove the file") from None
    if mode in WIDE_MODES or mode.startswith("I;"):
        raise CompetitionError(f"image {image} has 16-bit or float pixels (PIL mode {mode}), which fastai's "
                               "convert('RGB') clips to white",
                               "convert the images to 8 bits first, e.g. with ImageMagick: mogrify -depth 8 *.png")


def _reason(exc: Exception, image: Path) -> str:
    """PIL's own words where they say more than the file name (e.g. 'image file is truncated')."""
    text = " ".join(str(exc).split())
    return text if text and str(image) not in text and len(text) < 120 else type(exc).__name__


def public_entries(path: Path) -> list[Path]:
    """What a kernel sees of the competition: everything but the hidden labels."""
    return [p for p in sorted(path.iterdir()) if p.name not in HIDDEN_FILES and not p.name.startswith(".")]
