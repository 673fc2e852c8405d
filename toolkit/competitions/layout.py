"""Competition folders on this machine: finding them and checking their shape before anything runs."""

from __future__ import annotations

import csv
import io
import os
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


def available(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    # Hidden folders (such as a build's leftover staging folder) are not competitions.
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def find_competition(root: Path, name: str, given: dict | None = None) -> Path:
    """The folder of competition `name` under `root`, checked for the shape kernels expect (`given`: the
    configured labels CSV and columns, see `labelling`)."""
    path = root / name
    if not path.is_dir():
        known = available(root)
        hint = (f"available: {', '.join(known)}" if known else
                "python -m toolkit.demo builds the demo one; kpull data --competition SLUG fetches one from Kaggle")
        raise CompetitionError(f"unknown competition '{name}' (no folder {path})", hint)
    check_competition(path, given)
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


def check_competition(path: Path, given: dict | None = None) -> None:
    train, test, sample = path / "train_images", path / "test_images", path / "sample_submission.csv"
    for needed in (train, test):
        if not needed.is_dir():
            raise CompetitionError(f"competition {path.name} has no {needed.name}/ folder",
                                   "expected train_images/<label>/<image>, test_images/, sample_submission.csv")
    train_images = list(train_labels(path, given))
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


# -- labels from a CSV: images directly in train_images/, named by a CSV at the competition root ----------

# The label column's usual names (compared case-insensitively), when the CSV has more than two columns.
LABEL_COLUMNS = ("label", "labels", "class", "target", "category")
NOT_LABELS = {"sample_submission.csv"} | HIDDEN_FILES  # CSVs that never label the training images
SAY_WHICH = "in toolkit.toml or TOOLKIT_{}"


def labelling(path: Path, given: dict | None = None) -> dict | None:
    """How the training kernel labels the images of the competition at `path`: None for class folders
    (train_images/<label>/<image>), else {"csv": file name, "id": column, "label": column} when the images
    sit directly in train_images/ and a CSV at the competition root names them. `given` holds the configured
    "csv", "id" and "label" (empty: detect); see Config.labels_given."""
    train = path / "train_images"
    images = image_files(train)
    return _csv_labels(path, images, given or {})[0] if _csv_shaped(train, images) else None


def kernel_labelling(path: Path, given: dict) -> dict | None:
    """`labelling` of a competition folder that may exist only on Kaggle: with no local copy to detect
    the columns in, the configured ones are used when given, else the class folders are assumed."""
    if path.is_dir():
        return labelling(path, given)
    if not any(given.values()):
        return None
    if not (given.get("id") and given.get("label")):
        raise CompetitionError(f"competition {path.name} is not on this machine ({path}), so its labels CSV "
                               "cannot be looked at", "set both id_column and label_column, and labels_csv unless "
                               "it is train.csv, or download it with kpull data")
    return {"csv": given.get("csv") or "train.csv", "id": given["id"], "label": given["label"]}


def train_labels(path: Path, given: dict | None = None) -> dict[Path, str]:
    """Every training image and its label, refusing what the kernel would label wrongly or not at all:
    from class folders, or for images directly in train_images/ from the competition's labels CSV."""
    train = path / "train_images"
    images = image_files(train)
    if _csv_shaped(train, images):
        return _csv_labels(path, images, given or {})[1]
    return {p: p.parent.name for p in _train_images(train)}


def _csv_shaped(train: Path, images: list[Path]) -> bool:
    """Images directly in train_images/ and none in folders: no folder names a class, so a CSV must."""
    return bool(images) and all(p.parent == train for p in images)


def _csv_labels(path: Path, images: list[Path], given: dict) -> tuple[dict, dict[Path, str]]:
    table = _labels_csv(path, images, given.get("csv"))
    header, rows = _table(table)
    id_column = _id_column(table, header, rows, images, given.get("id"))
    label_column = _label_column(table, header, id_column, given.get("label"))
    labels = _image_labels(table, rows, header.index(id_column), header.index(label_column), images)
    return {"csv": table.name, "id": id_column, "label": label_column}, labels


def _labels_csv(path: Path, images: list[Path], name: str | None) -> Path:
    """The configured CSV, else the only CSV at the root (besides the submission's), else the only one
    with a column of the training images' names."""
    if name:
        if name in HIDDEN_FILES or not (path / name).is_file():
            names = [p.name for p in sorted(path.glob("*.csv")) if p.name not in HIDDEN_FILES]
            raise CompetitionError(f"labels_csv {name} is not a file of competition {path.name}",
                                   f"its CSV files: {', '.join(names) or 'none'}")
        return path / name
    found = [p for p in sorted(path.glob("*.csv")) if p.name not in NOT_LABELS and not p.name.startswith(".")]
    if len(found) > 1:
        found = [p for p in found if _names_images(p, images)]
    if len(found) == 1:
        return found[0]
    train = path / "train_images"
    if found:
        raise CompetitionError(f"the images of {train} are not in class folders and several CSV files name "
                               f"them ({', '.join(p.name for p in found)})",
                               f"say which labels them with labels_csv {SAY_WHICH.format('LABELS_CSV')}")
    raise CompetitionError(f"the images of {train} are not in class folders and no CSV at {path} names them",
                           "add train.csv with a column of image file names and a label column, "
                           "or move the images to train_images/<label>/<image>")


def _names_images(table: Path, images: list[Path]) -> bool:
    """Whether some column of `table` holds training image names (an unreadable CSV names none)."""
    try:
        header, rows = _table(table)
    except CompetitionError:
        return False
    return max(_matches(rows, images, len(header))) > 0


def _table(table: Path) -> tuple[list[str], list[list[str]]]:
    """The header and rows of a labels CSV: every row as wide as the header, no column named twice."""
    rows = _csv_rows(table, "id,label")
    if not rows or len(rows[0]) < 2:
        raise CompetitionError(f"{table} needs a header with an id column and a label column",
                               "its first line should name them, e.g. image_id,label")
    header = rows[0]
    twice = [c for c, n in Counter(header).items() if n > 1]
    if twice:
        raise CompetitionError(f"{table} names column '{twice[0]}' twice", "give each column its own name")
    for number, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            raise CompetitionError(f"{table} row {number} has {len(row)} fields, its header {len(header)}",
                                   "give every row a value for each column")
    return header, rows[1:]


def _matches(rows: list[list[str]], images: list[Path], width: int) -> list[int]:
    """For each column, how many of its distinct values name a training image (with or without extension)."""
    names = {p.name for p in images} | {p.stem for p in images}
    return [len({r[i] for r in rows} & names) for i in range(width)]


def _id_column(table: Path, header: list[str], rows: list[list[str]], images: list[Path], given: str | None) -> str:
    """The configured id column, else the one whose values name the most training images."""
    columns = f"its columns: {', '.join(header)}"
    if given:
        if given not in header:
            raise CompetitionError(f"id_column '{given}' is not a column of {table} ({columns})",
                                   "set id_column to the column of image file names")
        return given
    counts = _matches(rows, images, len(header))
    best = [c for c, n in zip(header, counts) if n == max(counts)]
    if max(counts) == 0 or len(best) > 1:
        what = "no column" if max(counts) == 0 else f"more than one column ({', '.join(best)})"
        raise CompetitionError(f"{table}: {what} holds the training images' file names ({columns})",
                               f"say which is the id column with id_column {SAY_WHICH.format('ID_COLUMN')}")
    return best[0]


def _label_column(table: Path, header: list[str], id_column: str, given: str | None) -> str:
    """The configured label column, else the one named like a label, else the only other column."""
    columns = f"its columns: {', '.join(header)}"
    if given:
        if given not in header or given == id_column:
            why = "is its id column" if given == id_column else "is not a column"
            raise CompetitionError(f"label_column '{given}' {why} of {table} ({columns})",
                                   "set label_column to the column of class names")
        return given
    others = [c for c in header if c != id_column]
    named = [c for c in others if c.strip().lower() in LABEL_COLUMNS]
    if len(named) == 1 or (not named and len(others) == 1):
        return (named or others)[0]
    what = f"more than one label column ({', '.join(named)})" if named else "no column named like a label"
    raise CompetitionError(f"{table}: {what} ({columns})",
                           f"say which is the label column with label_column {SAY_WHICH.format('LABEL_COLUMN')}")


def _image_labels(table: Path, rows: list[list[str]], id_at: int, label_at: int,
                  images: list[Path]) -> dict[Path, str]:
    """Each image's label: every row names one image (by file name, else without its extension, as the
    kernel looks them up), no image twice, every image labelled, and at least two classes."""
    by_name = {p.name: [p] for p in images}
    by_stem: dict[str, list[Path]] = {}
    for image in images:
        by_stem.setdefault(image.stem, []).append(image)
    labels: dict[Path, str] = {}
    unknown = []
    for row in rows:
        ident, label = row[id_at], row[label_at]
        found = by_name.get(ident) or by_stem.get(ident)
        if not found:
            unknown.append(ident)
        elif len(found) > 1:
            raise CompetitionError(f"{table}: id '{ident}' names {len(found)} images ({found[0].name}, "
                                   f"{found[1].name})", "use the file names, with their extensions, as ids")
        elif found[0] in labels:
            raise CompetitionError(f"{table} labels image {found[0].name} more than once",
                                   "keep one row per training image")
        elif not label.strip():
            raise CompetitionError(f"{table} gives no label for id '{ident}'", "give every training image a label")
        else:
            labels[found[0]] = label
    _check_labelled(table, images, labels, unknown)
    return labels


def _check_labelled(table: Path, images: list[Path], labels: dict[Path, str], unknown: list[str]) -> None:
    if unknown:
        raise CompetitionError(f"{table} lists {len(unknown)} ids without an image in train_images/ "
                               f"(e.g. '{unknown[0]}')", "remove those rows or add the images")
    missing = [p for p in images if p not in labels]
    if missing:
        raise CompetitionError(f"{len(missing)} training images have no row in {table} (e.g. {missing[0].name})",
                               "add a row (id, label) for each or remove the images")
    classes = sorted(set(labels.values()))
    if len(classes) < 2:
        raise CompetitionError(f"{table} gives every training image the label '{classes[0]}'",
                               "a classifier needs at least two classes")


def _csv_rows(path: Path, header: str) -> list[list[str]]:
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
    rows = _csv_rows(sample, "image_id,label")
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
