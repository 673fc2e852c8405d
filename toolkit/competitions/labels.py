"""Competitions labelled by a CSV (Kaggle's other common shape): the training images directly in train_images/
and a CSV at the competition root naming each one's class. Which CSV and columns (detected, or configured
with labels_csv / id_column / label_column), and every image's label, as the training kernel reads them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from toolkit.competitions.files import HIDDEN_FILES, csv_rows, image_files
from toolkit.core.errors import CompetitionError

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
    return csv_labels(path, images, given or {})[0] if csv_shaped(train, images) else None


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


def csv_shaped(train: Path, images: list[Path]) -> bool:
    """Images directly in train_images/ and none in folders: no folder names a class, so a CSV must."""
    return bool(images) and all(p.parent == train for p in images)


def csv_labels(path: Path, images: list[Path], given: dict) -> tuple[dict, dict[Path, str]]:
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
    rows = csv_rows(table, "id,label")
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
