"""Competition folders on this machine: finding them and checking their shape before anything runs."""

from __future__ import annotations

from pathlib import Path

from toolkit.competitions.files import HIDDEN_TEST, IMAGE_EXTENSIONS, check_images, image_files, sample_ids
from toolkit.competitions.labels import csv_labels, csv_shaped
from toolkit.core.errors import CompetitionError


def available(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    # Hidden folders (such as a build's leftover staging folder) are not competitions.
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def find_competition(root: Path, name: str, given: dict | None = None, record: Path | None = None) -> Path:
    """The folder of competition `name` under `root`, checked for the shape kernels expect (`given`: the
    configured labels CSV and columns, see `labelling`; `record`: the images decoded before, see check_images)."""
    path = root / name
    if not path.is_dir():
        known = available(root)
        hint = (f"available: {', '.join(known)}" if known else
                "python -m toolkit.demo builds the demo one; kpull data --competition SLUG fetches one from Kaggle")
        raise CompetitionError(f"unknown competition '{name}' (no folder {path})", hint)
    check_competition(path, given, record)
    return path


def check_competition(path: Path, given: dict | None = None, record: Path | None = None) -> None:
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
    check_images(train_images + test_images, record)
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


def _train_images(train: Path, images: list[Path]) -> list[Path]:
    """Every training image (`images`: those under `train`), refusing what fastai would label wrongly: its label
    (`parent_label`) is the folder the image sits in, so only train_images/<label>/<image> gives the intended
    classes."""
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


def train_labels(path: Path, given: dict | None = None) -> dict[Path, str]:
    """Every training image and its label, refusing what the kernel would label wrongly or not at all:
    from class folders, or for images directly in train_images/ from the competition's labels CSV."""
    train = path / "train_images"
    images = image_files(train)
    if csv_shaped(train, images):
        return csv_labels(path, images, given or {})[1]
    return {p: p.parent.name for p in _train_images(train, images)}
