"""Bad input, table-driven, through the real console scripts: every case exits non-zero with exactly one
line on stderr that names the problem (and the fix), no traceback, and leaves the store file and the
kernels/ folder byte for byte as they were."""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

BIN = Path(sys.executable).parent
TINY = ["--item", "Resize(16)", "--batch", "aug_transforms(size=16, do_flip=False)", "--epochs", "1", "--bs", "16",
        "--scratch"]


def train(*args: str) -> list[str]:
    return ["kpush", "train", "--dry-run", *args]


def ok_train(*extra: str) -> list[str]:
    return ["kpush", "train", "--arch", "resnet18", "--dry-run", *TINY, *extra]


# -- mutations of the project before the command --------------------------------------------------------

def toml(text: str) -> Callable[[Path], None]:
    return lambda project: (project / "toolkit.toml").write_text(text)


def comp(change: Callable[[Path], None]) -> Callable[[Path], None]:
    return lambda project: change(project / "competitions" / "digits-demo")


def _first_image(folder: Path) -> Path:
    return sorted(p for p in folder.rglob("*.png"))[0]


def corrupt_image(c: Path) -> None:
    _first_image(c / "train_images").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)


def empty_class(c: Path) -> None:
    (c / "train_images" / "zz-empty").mkdir()


def extra_test_image(c: Path) -> None:
    shutil.copy(_first_image(c / "test_images"), c / "test_images" / "not-in-sample.png")


def one_class(c: Path) -> None:
    classes = sorted(p for p in (c / "train_images").iterdir() if p.is_dir())
    for folder in classes[1:]:
        shutil.rmtree(folder)


def _first_class(c: Path) -> Path:
    return sorted(p for p in (c / "train_images").iterdir() if p.is_dir())[0]


def nested_train_image(c: Path) -> None:
    (_first_class(c) / "batch1").mkdir()
    shutil.copy(_first_image(_first_class(c)), _first_class(c) / "batch1" / "a.png")


def loose_train_image(c: Path) -> None:
    shutil.copy(_first_image(_first_class(c)), c / "train_images" / "loose.png")


def deep_png(c: Path) -> None:
    import numpy as np
    from PIL import Image

    Image.fromarray((np.arange(256).reshape(16, 16) * 200).astype("uint16")).save(_first_class(c) / "deep.png")


def truncated_jpeg(c: Path) -> None:
    import numpy as np
    from PIL import Image

    path = _first_class(c) / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:-600])


def empty_test_images(c: Path) -> None:
    for image in (c / "test_images").iterdir():
        image.unlink()


def duplicate_sample_id(c: Path) -> None:
    lines = (c / "sample_submission.csv").read_text().splitlines()
    (c / "sample_submission.csv").write_text("\n".join(lines + [lines[1]]) + "\n")


def utf16_sample(c: Path) -> None:
    (c / "sample_submission.csv").write_bytes((c / "sample_submission.csv").read_text().encode("utf-16"))


def csv_labels(header: tuple[str, ...] = ("image_id", "label"),
               edit: Callable[[list[list[str]]], list[list[str]]] = lambda rows: rows) -> Callable[[Path], None]:
    """The demo relabelled by a CSV: its training images moved directly into train_images/, and train.csv
    (one row per image: its name, then its class, or as `header` and `edit` make them)."""
    def change(c: Path) -> None:
        train, rows = c / "train_images", []
        for image in sorted(train.glob("*/*.png")):
            rows.append([image.name, "1", image.parent.name] if len(header) == 3 else [image.name, image.parent.name])
            image.rename(train / image.name)
        for folder in [p for p in train.iterdir() if p.is_dir()]:
            folder.rmdir()
        with open(c / "train.csv", "w", newline="") as fh:
            csv.writer(fh).writerows([list(header)] + edit(rows))
    return change


def loose_images_only(c: Path) -> None:
    csv_labels()(c)
    (c / "train.csv").unlink()


def sweep(text: str) -> Callable[[Path], None]:
    return lambda project: (project / "bad.toml").write_text(text)


SWEEP_OK_ROW = '[[run]]\narch = "resnet18"\nitem = "Resize(16)"\nbatch = "aug_transforms(size=16)"\nepochs = 1\n'

# (id, command, mutation or None, extra environment, substrings the one stderr line must contain)
CASES = [
    # the command line
    ("unknown-arch", train("--arch", "resnet19"), None, {}, ["unknown architecture 'resnet19'", "did you mean"]),
    ("negative-epochs", ok_train("--epochs", "-1"), None, {}, ["epochs must be between 1 and"]),
    ("bs-zero", ok_train("--bs", "0"), None, {}, ["bs must be between 1 and"]),
    ("lr-not-a-number", ok_train("--lr", "fast"), None, {}, ["--lr", "valid number", "see --help"]),
    ("epochs-not-an-int", ok_train("--epochs", "1.5"), None, {}, ["--epochs", "valid integer", "see --help"]),
    ("unknown-option", ok_train("--epoch", "3"), None, {}, ["--epoch", "see --help"]),
    ("lr-too-big", ok_train("--lr", "50"), None, {}, ["lr must be greater than 0"]),
    ("bad-precision", ok_train("--precision", "fp8"), None, {}, ["precision must be one of"]),
    ("malformed-transform", ok_train("--item", "Resize(("), None, {}, ["not a valid expression", "Resize(480"]),
    ("transform-runs-code", ok_train("--item", "__import__('os').system('id')"), None, {},
     ["must be a call to a fastai transform"]),
    ("unknown-transform", ok_train("--batch", "Evil(1)"), None, {}, ["unknown transform 'Evil'", "known transforms"]),
    ("transform-non-literal", ok_train("--item", "Resize(open('x'))"), None, {}, ["is not a literal value"]),
    ("transform-unknown-arg", ok_train("--item", "Resize(16, colour=1)"), None, {}, ["has no argument 'colour'"]),
    ("transform-size-text", ok_train("--item", "Resize('abc')"), None, {},
     ["Resize's size must be a whole number of pixels", "not 'abc'", "size=224"]),
    ("transform-size-negative", ok_train("--item", "Resize(size=-5)"), None, {}, ["Resize's size", "not -5"]),
    ("transform-probability", ok_train("--batch", "aug_transforms(size=16, p_affine=2)"), None, {},
     ["p_affine must be a number from 0 to 1"]),
    ("unknown-backend", ok_train("--backend", "nope"), None, {}, ["unknown backend 'nope'", "local, kaggle"]),
    ("unknown-competition", ok_train("-c", "no-such-comp"), None, {}, ["unknown competition 'no-such-comp'",
                                                                      "available: digits-demo"]),
    ("invalid-competition-slug", ok_train("-c", "Bad Name"), None, {}, ["not a valid competition slug"]),
    ("no-arch", ["kpush", "train", "--dry-run", "--epochs", "1"], None, {}, ["--arch"]),
    ("kaggle-without-credentials", ["kpush", "train", "--arch", "resnet18", *TINY, "--backend", "kaggle"], None,
     {"KAGGLE_CONFIG_DIR": "{empty}", "HOME": "{empty}"}, ["kaggle"]),
    ("missing-run-for-ksubmit", ["ksubmit", "ensemble", "--run", "nothing-like-this"], None, {},
     ["no finished run", "nothing-like-this"]),
    ("slug-over-50-chars", ["ksubmit", "ensemble", "--run", "x" * 60 + "-abcdef12"], None, {}, ["no finished run"]),
    # (--weights is parsed before the members are looked up)
    ("bad-weights", ["ksubmit", "ensemble", "--weights", "a,b"], None, {}, ["--weights 'a,b'", "comma-separated"]),
    ("weights-nan", ["ksubmit", "ensemble", "--weights", "nan"], None, {}, ["--weights 'nan'", "finite"]),
    ("weights-inf", ["ksubmit", "ensemble", "--weights", "1,inf"], None, {}, ["--weights '1,inf'", "finite"]),
    ("bad-pull-format", ["kpull", "outputs", "--format", "xml"], None, {}, ["unknown format 'xml'", "json"]),
    # toolkit.toml and the environment
    ("toml-unknown-key", ok_train(), toml("backnd = 'local'\n"), {}, ["unknown key 'backnd'", "known keys"]),
    ("toml-wrong-type", ok_train(), toml("concurrency = 'two'\n"), {}, ["'concurrency' must be an integer"]),
    ("toml-invalid", ok_train(), toml("backend = \n"), {}, ["not valid TOML"]),
    ("toml-zero-output-limit", ok_train(), toml("max_output_mb = 0\n"), {}, ["max_output_mb must be at least 1"]),
    ("toml-train-negative-epochs", train("--arch", "resnet18"), toml("[train]\nepochs = -3\n"), {},
     ["epochs must be between 1 and"]),
    ("toml-train-lr-text", train("--arch", "resnet18"), toml("[train]\nlr = 'fast'\n"), {}, ["lr must be a number"]),
    ("toml-train-unknown-key", train("--arch", "resnet18"), toml("[train]\nepoch = 3\n"), {},
     ["unknown run parameter 'epoch'", "did you mean 'epochs'"]),
    ("toml-train-bs-bool", train("--arch", "resnet18"), toml("[train]\nbs = true\n"), {}, ["bs must be a number"]),
    ("toml-train-transform-code", train("--arch", "resnet18"), toml("[train]\nitem = \"exec('x')\"\n"), {},
     ["unknown transform 'exec'"]),
    ("env-not-a-number", ok_train(), None, {"TOOLKIT_CONCURRENCY": "two"}, ["TOOLKIT_CONCURRENCY", "not a number"]),
    ("toml-is-a-folder", ok_train(), lambda project: (project / "toolkit.toml").mkdir(), {},
     ["toolkit.toml is not a file", "remove it"]),
    ("toml-negative-wait", ok_train(), toml("wait_timeout_s = -5\n"), {},
     ["wait_timeout_s must be a positive number of seconds, not -5"]),
    ("toml-zero-session", ok_train(), toml("session_timeout_s = 0\n"), {},
     ["session_timeout_s must be a positive number of seconds, not 0"]),
    ("env-poll-nan", ok_train(), None, {"TOOLKIT_POLL_INITIAL_S": "nan"}, ["TOOLKIT_POLL_INITIAL_S='nan'", "finite"]),
    ("env-project-missing", ok_train(), None, {"TOOLKIT_PROJECT": "{missing}"}, ["TOOLKIT_PROJECT=", "does not exist"]),
    ("env-unknown-backend", ok_train(), None, {"TOOLKIT_BACKEND": "colab"}, ["unknown backend 'colab'"]),
    # competition folders
    ("missing-train-images", ok_train(), comp(lambda c: shutil.rmtree(c / "train_images")), {},
     ["no train_images/ folder", "expected train_images/<label>/<image>"]),
    ("class-without-images", ok_train(), comp(empty_class), {}, ["zz-empty has no images", "remove it or add images"]),
    ("corrupt-image", ok_train(), comp(corrupt_image), {}, ["cannot be read", "replace or remove"]),
    ("empty-image", ok_train(), comp(lambda c: _first_image(c / "test_images").write_bytes(b"")), {},
     ["is empty", "replace or remove"]),
    ("test-image-not-in-sample", ok_train(), comp(extra_test_image), {},
     ["does not match test_images/", "not-in-sample.png"]),
    ("single-class", ok_train(), comp(one_class), {}, ["at least two class folders"]),
    ("no-sample-submission", ok_train(), comp(lambda c: (c / "sample_submission.csv").unlink()), {},
     ["no sample_submission.csv"]),
    ("nested-train-image", ok_train(), comp(nested_train_image), {},
     ["batch1/a.png is in a sub-folder", "label it 'batch1'", "folder directly under train_images/"]),
    ("loose-train-image", ok_train(), comp(loose_train_image), {},
     ["loose.png is directly in train_images/", "label it 'train_images'"]),
    ("16-bit-image", ok_train(), comp(deep_png), {}, ["deep.png", "PIL mode I;16", "8 bits"]),
    ("truncated-jpeg", ok_train(), comp(truncated_jpeg), {}, ["cut.jpg cannot be read", "truncated"]),
    ("empty-test-images", ok_train(), comp(empty_test_images), {}, ["test_images has no images"]),
    ("duplicate-sample-id", ok_train(), comp(duplicate_sample_id), {}, ["more than once", "one row per test image"]),
    ("sample-not-utf8", ok_train(), comp(utf16_sample), {}, ["sample_submission.csv is not UTF-8 text"]),
    # competitions labelled by a CSV (train_images/<image>, train.csv) and their settings
    ("csv-no-label-column", ok_train(), comp(csv_labels(("image_id", "fold", "kind"))), {},
     ["no column named like a label", "image_id, fold, kind", "label_column", "TOOLKIT_LABEL_COLUMN"]),
    ("csv-image-without-row", ok_train(), comp(csv_labels(edit=lambda rows: rows[1:])), {},
     ["1 training images have no row in", "train.csv", "add a row"]),
    ("csv-id-without-image", ok_train(), comp(csv_labels(edit=lambda rows: rows + [["ghost.png", "zero"]])), {},
     ["lists 1 ids without an image", "ghost.png", "remove those rows"]),
    ("csv-single-class", ok_train(), comp(csv_labels(edit=lambda rows: [[r[0], "zero"] for r in rows])), {},
     ["gives every training image the label 'zero'", "two classes"]),
    ("csv-missing", ok_train(), comp(loose_images_only), {}, ["not in class folders and no CSV", "add train.csv"]),
    ("csv-configured-missing", ok_train(), comp(csv_labels()), {"TOOLKIT_LABELS_CSV": "labels.csv"},
     ["labels_csv labels.csv is not a file", "its CSV files: sample_submission.csv, train.csv"]),
    ("csv-configured-column-missing", ok_train(), comp(csv_labels()), {"TOOLKIT_ID_COLUMN": "id"},
     ["id_column 'id' is not a column", "image_id, label"]),
    ("toml-labels-csv-path", ok_train(), toml('labels_csv = "data/train.csv"\n'), {},
     ["labels_csv must be the name of a CSV file at the competition root", "train.csv"]),
    ("toml-same-label-columns", ok_train(), toml('id_column = "x"\nlabel_column = "x"\n'), {},
     ["id_column and label_column are both 'x'"]),
    # sweep files
    ("sweep-missing-file", ["kpush", "sweep", "nope.toml", "--dry-run"], None, {}, ["nope.toml", "does not exist"]),
    ("sweep-is-a-folder", ["kpush", "sweep", "kernels", "--dry-run"], None, {}, ["kernels is a folder", ".toml file"]),
    ("sweep-duplicate-names", ["kpush", "sweep", "bad.toml", "--dry-run"],
     sweep(f'{SWEEP_OK_ROW}name = "a"\n{SWEEP_OK_ROW.replace("resnet18", "resnet34")}name = "a"\n'),
     {}, ["duplicate run name 'a'"]),
    ("sweep-bad-value", ["kpush", "sweep", "bad.toml", "--dry-run"], sweep(SWEEP_OK_ROW.replace("epochs = 1", 'epochs = "one"')), {},
     ["epochs must be an integer"]),
    ("sweep-malformed-transform", ["kpush", "sweep", "bad.toml", "--dry-run"],
     sweep(SWEEP_OK_ROW.replace("Resize(16)", "Resize(16")), {}, ["not a valid expression"]),
    ("sweep-unknown-arch", ["kpush", "sweep", "bad.toml", "--dry-run"],
     sweep(SWEEP_OK_ROW.replace("resnet18", "resnett18")), {}, ["unknown architecture", "did you mean"]),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    from toolkit.competitions.demo import build_competition
    from toolkit.registry.store import Store

    root = tmp_path_factory.mktemp("template")
    build_competition(root / "competitions", limit=40)
    Store(root / ".toolkit" / "runs.sqlite")
    (root / "kernels").mkdir()
    return root


def fingerprint(project: Path) -> dict[str, str]:
    """Hashes of the store file and of everything under kernels/."""
    files = [project / ".toolkit" / "runs.sqlite", *sorted((project / "kernels").rglob("*"))]
    return {str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in files if p.exists()}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, template, tmp_path):
    name, command, mutate, extra_env, expected = case
    project = tmp_path / "project"
    shutil.copytree(template, project, symlinks=True)
    if mutate:
        mutate(project)
    empty = tmp_path / "empty-home"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TOOLKIT_", "KAGGLE_")) and k not in ("HTTP_PROXY", "http_proxy")}
    env.update(TOOLKIT_PROJECT=str(project), COLUMNS="120")
    missing = tmp_path / "nonexistent"
    env.update({k: v.replace("{empty}", str(empty)).replace("{missing}", str(missing))
                for k, v in extra_env.items()})
    before = fingerprint(project)
    result = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=project, env=env, capture_output=True,
                            text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, (name, result.stdout, result.stderr)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert fingerprint(project) == before
    assert not missing.exists()  # a project folder that does not exist is never created
