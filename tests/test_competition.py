"""The demo competition and the competition-shape checks (toolkit/competitions/)."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest

from toolkit.competitions.demo import CLASSES, CSV_NAME, NAME, build_competition
from toolkit.competitions.files import IMAGE_EXTENSIONS, image_files, is_image, public_entries
from toolkit.competitions.labels import kernel_labelling, labelling
from toolkit.competitions.layout import available, check_competition, find_competition, train_labels
from toolkit.core.errors import CompetitionError


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build_competition(tmp_path_factory.mktemp("competitions"), limit=60)


@pytest.fixture
def comp(built, tmp_path) -> Path:
    """A private copy of the demo competition that a test may damage."""
    return Path(shutil.copytree(built, tmp_path / NAME))


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_demo_shape(built):
    assert built.name == NAME
    assert sorted(p.name for p in built.iterdir()) == ["sample_submission.csv", "solution.csv", "test_images",
                                                       "train_images"]
    labels = sorted(p.name for p in (built / "train_images").iterdir())
    assert set(labels) <= set(CLASSES) and len(labels) == len(CLASSES)
    train = [p for p in (built / "train_images").rglob("*") if p.is_file()]
    test = sorted(p.name for p in (built / "test_images").iterdir())
    assert len(train) + len(test) == 60 and len(test) == 15
    assert all(p.suffix in IMAGE_EXTENSIONS for p in train)
    assert not set(p.name for p in train) & set(test)  # no image in both

    sample, solution = read_rows(built / "sample_submission.csv"), read_rows(built / "solution.csv")
    assert sample[0] == solution[0] == ["image_id", "label"]
    assert [r[0] for r in sample[1:]] == test
    assert [r[0] for r in solution[1:]] == test
    assert {r[1] for r in solution[1:]} <= set(CLASSES)
    check_competition(built)


def test_demo_images_are_rgb_and_sized(built):
    from PIL import Image

    first = next((built / "test_images").iterdir())
    with Image.open(first) as image:
        assert image.mode == "RGB" and image.size == (32, 32)


def test_demo_labels_match_the_source_digits(built):
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for row in read_rows(built / "solution.csv")[1:4]:
        index = int(Path(row[0]).stem) - 100000
        assert row[1] == CLASSES[digits.target[index]]
        with Image.open(built / "test_images" / row[0]) as image:
            assert np.asarray(image).any()


def test_rebuild_replaces_the_folder_whole(built, tmp_path):
    root = tmp_path / "competitions"
    first = build_competition(root, limit=40)
    (first / "stray.txt").write_text("old")
    again = build_competition(root, limit=40)
    assert again == first and not (again / "stray.txt").exists()
    assert [p.name for p in root.iterdir()] == [NAME]  # no staging folder left


def test_find_competition(comp):
    assert find_competition(comp.parent, NAME) == comp
    assert available(comp.parent) == [NAME]


def test_unknown_competition_lists_the_available_ones(comp):
    with pytest.raises(CompetitionError) as info:
        find_competition(comp.parent, "paddy-disease-classification")
    assert "paddy-disease-classification" in info.value.message and NAME in info.value.hint


def test_hidden_folders_are_not_competitions(comp):
    (comp.parent / f".{NAME}.leftover").mkdir()
    assert available(comp.parent) == [NAME]


def test_unknown_competition_in_an_empty_root(tmp_path):
    with pytest.raises(CompetitionError) as info:
        find_competition(tmp_path / "nothing", NAME)
    assert "python -m toolkit.demo" in info.value.hint and "kpull data" in info.value.hint


def test_missing_train_images(comp):
    shutil.rmtree(comp / "train_images")
    with pytest.raises(CompetitionError, match="train_images"):
        check_competition(comp)


def test_missing_test_images(comp):
    shutil.rmtree(comp / "test_images")
    with pytest.raises(CompetitionError, match="test_images"):
        check_competition(comp)


def test_class_folder_without_images(comp):
    (comp / "train_images" / "ghost").mkdir()
    (comp / "train_images" / "ghost" / "notes.txt").write_text("not an image")
    with pytest.raises(CompetitionError, match="ghost"):
        check_competition(comp)


def test_a_single_class_is_not_enough(comp):
    for folder in list((comp / "train_images").iterdir())[1:]:
        shutil.rmtree(folder)
    with pytest.raises(CompetitionError, match="two class folders"):
        check_competition(comp)


def test_test_image_missing_from_sample_submission(comp):
    rows = read_rows(comp / "sample_submission.csv")
    dropped = rows.pop(3)[0]
    with open(comp / "sample_submission.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with pytest.raises(CompetitionError) as info:
        check_competition(comp)
    assert "1 test images not in it" in info.value.message and dropped in info.value.message


def test_sample_submission_id_without_an_image(comp):
    victim = sorted((comp / "test_images").iterdir())[0]
    victim.unlink()
    with pytest.raises(CompetitionError, match=victim.name):
        check_competition(comp)


def test_missing_sample_submission(comp):
    (comp / "sample_submission.csv").unlink()
    with pytest.raises(CompetitionError, match="sample_submission.csv"):
        check_competition(comp)


def test_other_extensions_and_nested_test_images_are_fine(comp):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(comp / "train_images" / "zero" / "extra.JPG", format="JPEG")
    (comp / "test_images" / "batch2").mkdir()
    Image.new("RGB", (8, 8)).save(comp / "test_images" / "batch2" / "x.jpeg", format="JPEG")
    with open(comp / "sample_submission.csv", "a", newline="") as fh:
        csv.writer(fh).writerow(["batch2/x.jpeg", "zero"])
    check_competition(comp)


def test_public_entries_hide_the_solution(comp):
    names = [p.name for p in public_entries(comp)]
    assert "solution.csv" not in names
    assert names == ["sample_submission.csv", "test_images", "train_images"]


# -- what fastai will read: layout, file kinds, pixels ------------------------------------------


def _png(path: Path, mode: str = "RGB") -> Path:
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        Image.fromarray((np.arange(64).reshape(8, 8) * 1000).astype("uint16")).save(path)
    else:
        Image.new(mode, (8, 8)).save(path)
    return path


def test_image_extensions_are_one_lowercase_set():
    from PIL import Image

    assert isinstance(IMAGE_EXTENSIONS, frozenset)
    assert all(e.startswith(".") and e == e.lower() for e in IMAGE_EXTENSIONS)
    assert {".jpg", ".jpeg", ".jfif", ".png"} <= IMAGE_EXTENSIONS and ".svg" not in IMAGE_EXTENSIONS
    assert IMAGE_EXTENSIONS <= set(Image.registered_extensions())  # PIL decodes every one


def test_image_files_lists_what_fastai_lists(tmp_path):
    from fastai.data.transforms import get_files

    names = ["a.png", "b.JPG", "c.jfif", "d.svg", "e.txt", ".hidden.png", "f.tar.PNG", "jpg", "g.Jpeg",
             ".ipynb_checkpoints/h.png", "sub/i.webp", "sub/.cache/j.png", "k.png.bak"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    ours = image_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in ours] == [
        "a.png", "b.JPG", "c.jfif", "f.tar.PNG", "g.Jpeg", "jpg", "sub/i.webp"]
    assert sorted(get_files(tmp_path, extensions=IMAGE_EXTENSIONS)) == ours
    assert is_image("x.JFIF") and not is_image("x.svg") and not is_image(".x.png")


def test_an_image_in_a_sub_folder_of_a_class_is_refused(comp):
    nested = _png(comp / "train_images" / "one" / "batch1" / "a.png")
    _png(comp / "train_images" / "one" / "batch1" / "b.png")
    with pytest.raises(CompetitionError) as info:
        check_competition(comp)
    assert str(nested) in info.value.message and "(and 1 more)" in info.value.message
    assert "label it 'batch1'" in info.value.message
    assert "folder directly under train_images/" in info.value.hint


def test_an_image_directly_in_train_images_is_refused(comp):
    loose = _png(comp / "train_images" / "loose.png")
    with pytest.raises(CompetitionError) as info:
        check_competition(comp)
    assert str(loose) in info.value.message and "directly in train_images/" in info.value.message
    assert "label it 'train_images'" in info.value.message


def test_hidden_and_non_image_files_are_ignored(comp):
    _png(comp / "train_images" / ".ipynb_checkpoints" / "x-checkpoint.png")  # fastai skips hidden folders
    _png(comp / "train_images" / "zero" / ".ipynb_checkpoints" / "y.png")
    _png(comp / "train_images" / "zero" / ".hidden.png")
    (comp / "train_images" / "notes.txt").write_text("not an image")
    (comp / "train_images" / "zero" / "drawing.svg").write_text("<svg/>")
    _png(comp / "test_images" / ".ipynb_checkpoints" / "z.png")
    (comp / "test_images" / "readme.md").write_text("not listed in the sample")
    check_competition(comp)


def test_a_class_of_ignored_files_has_no_images(comp):
    (comp / "train_images" / "vectors").mkdir()
    (comp / "train_images" / "vectors" / "a.svg").write_text("<svg/>")
    with pytest.raises(CompetitionError, match="vectors has no images"):
        check_competition(comp)


@pytest.mark.parametrize("where", ["train_images/zero/deep.png", "test_images/deep.png"])
def test_16_bit_images_are_refused(comp, where):
    path = _png(comp / where, "I;16")
    if where.startswith("test"):
        with open(comp / "sample_submission.csv", "a", newline="") as fh:
            csv.writer(fh).writerow(["deep.png", "zero"])
    with pytest.raises(CompetitionError) as info:
        check_competition(comp)
    assert str(path) in info.value.message and "I;16" in info.value.message and "8 bits" in info.value.hint


def test_a_truncated_jpeg_is_caught(comp):
    import numpy as np
    from PIL import Image

    path = comp / "train_images" / "zero" / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:-600])
    with Image.open(path) as img:
        img.verify()  # PIL's verify() alone lets it through
    with pytest.raises(CompetitionError, match=r"cut\.jpg cannot be read: image file is truncated"):
        check_competition(comp)


def test_images_that_decoded_well_are_decoded_again_only_once_changed(comp, tmp_path, monkeypatch):
    import time

    from toolkit.competitions import files

    record, decoded, decode = tmp_path / "state" / "checked-images" / f"{NAME}.json", [], files.check_image
    monkeypatch.setattr(files, "check_image", lambda image: (decoded.append(image), decode(image))[1])
    check_competition(comp, record=record)
    everything = image_files(comp / "train_images") + image_files(comp / "test_images")
    assert sorted(decoded) == sorted(everything) and record.is_file()
    decoded.clear()
    check_competition(comp, record=record)
    assert decoded == []  # nothing changed, nothing decoded

    time.sleep(0.05)  # past the file system's timestamp tick
    victim = everything[0]
    before = victim.stat()
    victim.write_bytes(b"\0" * before.st_size)  # rewritten in place: same size, its modification time put back
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(CompetitionError, match="cannot be read"):
        check_competition(comp, record=record)
    assert decoded == [victim]
    shutil.copy(everything[1], victim)  # a good image again: decoded once, then remembered
    decoded.clear()
    check_competition(comp, record=record)
    check_competition(comp, record=record)
    assert decoded == [victim]


def test_an_unreadable_record_decodes_every_image(comp, tmp_path, monkeypatch):
    from toolkit.competitions import files

    record = tmp_path / "checked.json"
    record.write_text("[not a record")
    decoded = []
    monkeypatch.setattr(files, "check_image", decoded.append)
    check_competition(comp, record=record)
    assert len(decoded) == 60 and isinstance(json.loads(record.read_text()), dict)


def test_a_jfif_image_is_an_image(comp):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(comp / "train_images" / "zero" / "photo.jfif", format="JPEG")
    Image.new("RGB", (8, 8)).save(comp / "test_images" / "photo.jfif", format="JPEG")
    with pytest.raises(CompetitionError, match="photo.jfif"):  # a test image: the sample must list it
        check_competition(comp)
    with open(comp / "sample_submission.csv", "a", newline="") as fh:
        csv.writer(fh).writerow(["photo.jfif", "zero"])
    check_competition(comp)


def test_empty_test_images_is_refused(comp):
    for image in (comp / "test_images").iterdir():
        image.unlink()
    with pytest.raises(CompetitionError, match="test_images has no images"):
        check_competition(comp)


def test_a_duplicate_id_in_the_sample_submission_is_refused(comp):
    rows = read_rows(comp / "sample_submission.csv")
    with open(comp / "sample_submission.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows + [rows[2]])
    with pytest.raises(CompetitionError, match=f"lists id '{rows[2][0]}' more than once"):
        check_competition(comp)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "latin-1"])
def test_a_sample_submission_that_is_not_utf8_is_refused(comp, encoding):
    text = (comp / "sample_submission.csv").read_text() + ("é.png,zero\n" if encoding == "latin-1" else "")
    (comp / "sample_submission.csv").write_bytes(text.encode(encoding))
    with pytest.raises(CompetitionError) as info:
        check_competition(comp)
    assert "is not UTF-8 text" in info.value.message and "UTF-8" in info.value.hint


def test_a_sample_submission_needs_two_columns(comp):
    rows = read_rows(comp / "sample_submission.csv")
    (comp / "sample_submission.csv").write_text("\n".join(r[0] for r in rows) + "\n")
    with pytest.raises(CompetitionError, match="an id column and a label column"):
        check_competition(comp)


# -- competitions labelled by a CSV: train_images/<image> and train.csv ----------------------------------


@pytest.fixture(scope="module")
def built_csv(tmp_path_factory) -> Path:
    return build_competition(tmp_path_factory.mktemp("csv-competitions"), limit=60, csv_labels=True)


@pytest.fixture
def csv_comp(built_csv, tmp_path) -> Path:
    return Path(shutil.copytree(built_csv, tmp_path / built_csv.name))


def write_rows(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)


def refusal(comp: Path, given: dict | None = None) -> CompetitionError:
    with pytest.raises(CompetitionError) as info:
        check_competition(comp, given)
    return info.value


def test_csv_demo_shape_and_labels(built_csv, built):
    assert built_csv.name == CSV_NAME
    assert all(p.is_file() for p in (built_csv / "train_images").iterdir())
    header, *rows = read_rows(built_csv / "train.csv")
    assert header == ["image_id", "label"] and all("." not in r[0] for r in rows)  # ids without extension
    check_competition(built_csv)
    assert labelling(built_csv) == {"csv": "train.csv", "id": "image_id", "label": "label"}
    assert labelling(built) is None  # class folders
    # The same images with the same labels as the folder-labelled demo.
    by_folder = {p.name: label for p, label in train_labels(built).items()}
    assert {p.name: label for p, label in train_labels(built_csv).items()} == by_folder


def test_csv_ids_may_carry_the_extension(csv_comp):
    header, *rows = read_rows(csv_comp / "train.csv")
    write_rows(csv_comp / "train.csv", [header] + [[r[0] + ".png", r[1]] for r in rows])
    check_competition(csv_comp)
    assert len(train_labels(csv_comp)) == len(rows)


def test_the_label_column_is_found_by_name_among_others(csv_comp):
    header, *rows = read_rows(csv_comp / "train.csv")
    write_rows(csv_comp / "train.csv", [["fold", "image_id", "Target"]] + [["1", r[0], r[1]] for r in rows])
    assert labelling(csv_comp) == {"csv": "train.csv", "id": "image_id", "label": "Target"}


def test_an_unnamed_label_column_among_several_must_be_given(csv_comp):
    header, *rows = read_rows(csv_comp / "train.csv")
    write_rows(csv_comp / "train.csv", [["fold", "image", "species"]] + [["1", r[0], r[1]] for r in rows])
    error = refusal(csv_comp)
    assert "no column named like a label" in error.message and "fold, image, species" in error.message
    assert "label_column" in error.hint and "TOOLKIT_LABEL_COLUMN" in error.hint
    assert labelling(csv_comp, {"label": "species"}) == {"csv": "train.csv", "id": "image", "label": "species"}
    assert "is not a column" in refusal(csv_comp, {"label": "kind"}).message


def test_two_columns_of_file_names_make_the_id_ambiguous(csv_comp):
    header, *rows = read_rows(csv_comp / "train.csv")
    write_rows(csv_comp / "train.csv", [["image_id", "file", "label"]] + [[r[0], r[0] + ".png", r[1]] for r in rows])
    error = refusal(csv_comp)
    assert "more than one column (image_id, file)" in error.message and "id_column" in error.hint
    assert labelling(csv_comp, {"id": "file"})["id"] == "file"
    assert "is its id column" in refusal(csv_comp, {"id": "file", "label": "file"}).message


def test_ids_that_name_no_image_are_refused(csv_comp):
    header, *rows = read_rows(csv_comp / "train.csv")
    write_rows(csv_comp / "train.csv", [header] + [["img_" + r[0], r[1]] for r in rows])
    error = refusal(csv_comp)
    assert "no column holds the training images' file names" in error.message
    assert "image_id, label" in error.message and "id_column" in error.hint


def test_an_image_without_a_row_is_refused(csv_comp):
    header, *rows = read_rows(csv_comp / "train.csv")
    write_rows(csv_comp / "train.csv", [header] + rows[1:])
    error = refusal(csv_comp)
    assert f"1 training images have no row in {csv_comp / 'train.csv'} (e.g. {rows[0][0]}.png)" in error.message


def test_an_id_without_an_image_is_refused(csv_comp):
    header, *rows = read_rows(csv_comp / "train.csv")
    write_rows(csv_comp / "train.csv", [header] + rows + [["999999", "zero"]])
    error = refusal(csv_comp)
    assert "lists 1 ids without an image in train_images/ (e.g. '999999')" in error.message


def test_an_image_labelled_twice_or_not_at_all_is_refused(csv_comp):
    header, *rows = read_rows(csv_comp / "train.csv")
    write_rows(csv_comp / "train.csv", [header] + rows + [[rows[0][0] + ".png", rows[0][1]]])
    assert f"labels image {rows[0][0]}.png more than once" in refusal(csv_comp).message
    write_rows(csv_comp / "train.csv", [header, [rows[0][0], " "]] + rows[1:])
    assert f"gives no label for id '{rows[0][0]}'" in refusal(csv_comp).message


def test_a_single_csv_class_is_not_enough(csv_comp):
    header, *rows = read_rows(csv_comp / "train.csv")
    write_rows(csv_comp / "train.csv", [header] + [[r[0], "zero"] for r in rows])
    error = refusal(csv_comp)
    assert "gives every training image the label 'zero'" in error.message and "two classes" in error.hint


def test_csv_labels_ignore_hidden_folders_and_other_files(csv_comp):
    _png(csv_comp / "train_images" / ".ipynb_checkpoints" / "x-checkpoint.png")  # fastai skips it
    (csv_comp / "train_images" / "notes.txt").write_text("not an image")
    check_competition(csv_comp)
    assert labelling(csv_comp) is not None


def test_an_id_naming_two_images_is_refused(csv_comp):
    first = read_rows(csv_comp / "train.csv")[1][0]
    twin = _png(csv_comp / "train_images" / f"{first}.jpg")
    error = refusal(csv_comp)
    assert f"id '{first}' names 2 images" in error.message and twin.name in error.message
    assert "with their extensions" in error.hint


def test_the_labels_csv_is_found_or_named(csv_comp):
    header, *rows = read_rows(csv_comp / "train.csv")
    write_rows(csv_comp / "meta.csv", [["source", "licence"], ["sklearn", "bsd"]])  # names no image
    check_competition(csv_comp)
    shutil.copy(csv_comp / "train.csv", csv_comp / "train_v2.csv")
    error = refusal(csv_comp)
    assert "several CSV files name them (train.csv, train_v2.csv)" in error.message
    assert "labels_csv" in error.hint and "TOOLKIT_LABELS_CSV" in error.hint
    assert labelling(csv_comp, {"csv": "train_v2.csv"})["csv"] == "train_v2.csv"
    error = refusal(csv_comp, {"csv": "labels.csv"})
    assert "labels_csv labels.csv is not a file" in error.message and "train.csv, train_v2.csv" in error.hint
    assert "is not a file" in refusal(csv_comp, {"csv": "solution.csv"}).message  # kernels never see it


def test_loose_images_without_a_csv_are_refused(csv_comp):
    (csv_comp / "train.csv").unlink()
    error = refusal(csv_comp)
    assert "not in class folders and no CSV" in error.message and "train_images/<label>/<image>" in error.hint


@pytest.mark.parametrize("text,expected", [
    ("image_id,label\n100000,zero,extra\n", "row 2 has 3 fields, its header 2"),
    ("image_id,image_id\n100000,zero\n", "names column 'image_id' twice"),
    ("image_id\n100000\n", "needs a header with an id column and a label column"),
])
def test_a_malformed_labels_csv_is_refused(csv_comp, text, expected):
    (csv_comp / "train.csv").write_text(text)
    assert expected in refusal(csv_comp).message


def test_a_labels_csv_that_is_not_utf8_is_refused(csv_comp):
    (csv_comp / "train.csv").write_bytes((csv_comp / "train.csv").read_text().encode("utf-16"))
    error = refusal(csv_comp)
    assert "train.csv is not UTF-8 text" in error.message and "id,label" in error.hint


def test_kernel_labelling_without_a_local_copy(tmp_path):
    absent = tmp_path / "only-on-kaggle"
    assert kernel_labelling(absent, {"csv": "", "id": "", "label": ""}) is None  # class folders assumed
    assert kernel_labelling(absent, {"csv": "", "id": "image_id", "label": "label"}) == \
        {"csv": "train.csv", "id": "image_id", "label": "label"}
    with pytest.raises(CompetitionError) as info:
        kernel_labelling(absent, {"csv": "labels.csv", "id": "", "label": "label"})
    assert "not on this machine" in info.value.message and "id_column and label_column" in info.value.hint


def test_the_kernel_reads_the_labels_the_check_reads(csv_comp):
    """The training notebook's CSV cell (pandas, fastai's get_files) gives every image the check's label,
    with ids written with and without extensions, and leaves out images it has no row for."""
    from fastai.data.transforms import get_files

    from toolkit.kernel.render import render_train_notebook
    from toolkit.specs.spec import build_spec

    header, *rows = read_rows(csv_comp / "train.csv")
    write_rows(csv_comp / "train.csv", [["image_id", "label"]] +
               [[r[0] + (".png" if i % 2 else ""), r[1]] for i, r in enumerate(rows)])
    given = labelling(csv_comp)
    nb = render_train_notebook(build_spec({"arch": "resnet18", "competition": CSV_NAME}), labels=given)
    (cell,) = [c.source for c in nb.cells if "trn_labels =" in c.source]
    space = {"LABELS": given, "path": csv_comp, "trn_path": csv_comp / "train_images",
             "get_images": lambda folder: get_files(folder, extensions=IMAGE_EXTENSIONS)}
    exec(cell, space)
    kernel = {Path(f): space["label_of"](f) for f in space["labelled_images"](csv_comp / "train_images")}
    assert kernel == train_labels(csv_comp)
    assert set(kernel.values()) == {r[1] for r in rows}
    extra = _png(csv_comp / "train_images" / "unlisted.png")
    assert extra not in space["labelled_images"](csv_comp / "train_images") and len(kernel) == len(rows)
