"""What a competition folder holds, file by file: what counts as an image (for the check and for the kernels,
which pass IMAGE_EXTENSIONS to fastai's get_files), which entries kernels never see, reading its CSV files,
and decoding images as a kernel will."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections import Counter
from pathlib import Path

from toolkit.core.errors import CompetitionError

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
        found.extend(os.path.join(parent, name) for name in files if is_image(name))
    return [Path(p) for p in sorted(found, key=lambda p: p.split(os.sep))]  # in Path's order, part by part


def csv_rows(path: Path, header: str) -> list[list[str]]:
    """The non-empty rows of a UTF-8 CSV file (a byte-order mark dropped, as pandas does), or one line
    saying why it cannot be read; `header` is the example header for the hint."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:  # NULs: UTF-16 text of ASCII ids still decodes as UTF-8
        raise CompetitionError(f"{path} is not UTF-8 text", f"save it as UTF-8 CSV with the header {header}")
    try:
        return [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    except csv.Error as exc:
        raise CompetitionError(f"{path} is not valid CSV: {exc}", f"save it as CSV with the header {header}") from None


def sample_ids(sample: Path) -> list[str]:
    """The ids of sample_submission.csv in row order, refusing what the ensemble kernel could not use:
    text that is not UTF-8, a header without an id and a label column, an id listed twice."""
    rows = csv_rows(sample, "image_id,label")
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


def check_images(images: list[Path], record: Path | None = None) -> None:
    """Refuse empty files everywhere, and images that fastai would fail on or misread (all of them up to
    VERIFY_ALL_UP_TO, else an evenly spaced sample of VERIFY_SAMPLE), naming the first bad file. `record`: a file
    of the images that decoded well (Config.image_record), each not decoded again while its size, times and
    inode are those it had then (any write or replacement changes its change time)."""
    seen = {}
    for image in images:
        try:
            stat = image.stat()
        except OSError as exc:  # a broken link, a file removed meanwhile
            raise CompetitionError(f"image {image} cannot be read: {exc.strerror}",
                                   "replace or remove the file") from None
        if stat.st_size == 0:
            raise CompetitionError(f"image {image} is empty", "replace or remove the file")
        seen[image] = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
    if len(images) <= VERIFY_ALL_UP_TO:
        sample = images
    else:
        step = len(images) / VERIFY_SAMPLE
        sample = [images[int(i * step)] for i in range(VERIFY_SAMPLE)] + [images[-1]]
    decoded = _read_record(record)
    for image in sample:
        if decoded.get(str(image)) != seen[image]:
            check_image(image)
    if record is not None and {str(image): seen[image] for image in sample} != decoded:
        _write_record(record, {str(image): seen[image] for image in sample})


def _read_record(record: Path | None) -> dict:
    try:
        found = json.loads(record.read_text()) if record is not None else {}
    except (OSError, ValueError):  # none yet, or unreadable: every image is decoded
        return {}
    return found if isinstance(found, dict) else {}


def _write_record(record: Path, decoded: dict) -> None:
    """Replaced whole, so that a check running beside this one reads the old record or the new one."""
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{record.name}.", dir=record.parent)
        with os.fdopen(fd, "w") as out:
            json.dump(decoded, out)
        os.replace(temporary, record)
    except OSError:  # a read-only project: the next check decodes them again
        pass


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
