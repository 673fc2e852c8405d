"""The demo competition and the competition-shape checks (toolkit/demo.py, toolkit/competition.py)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from toolkit.competition import (IMAGE_EXTENSIONS, available, check_competition, find_competition,
                                 public_entries)
from toolkit.demo import CLASSES, NAME, build_competition
from toolkit.errors import CompetitionError


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
    assert "make demo" in info.value.hint


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
