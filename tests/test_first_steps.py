"""First steps of someone who did not read the README, through the real console scripts, without
training anything: a bare command, an empty folder, nothing recorded yet, a damaged registry, a
large sweep's notes, kstop where it cannot stop."""

from __future__ import annotations

from pathlib import Path

import pytest
from console import one_line
from console import outside as cli

TINY = ["--item", "Resize(16)", "--batch", "aug_transforms(size=16, do_flip=False)", "--epochs", "1", "--bs", "16"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from toolkit.competitions.demo import build_competition

    root = tmp_path_factory.mktemp("demo")
    build_competition(root / "competitions", limit=40)
    return root


def test_a_bare_command_shows_its_help_and_no_empty_error(tmp_path):
    result = cli(tmp_path, "kpush")
    assert result.returncode == 2
    assert "train" in result.stdout and "sweep" in result.stdout
    assert "error" not in result.stderr


def test_an_empty_folder_says_how_to_get_the_demo_here(tmp_path):
    line = one_line(cli(tmp_path, "kpush", "train", "--arch", "resnet18"))
    assert "no competitions in" in line and "python -m toolkit.demo" in line and "make" not in line
    assert not (tmp_path / "kernels").exists()


def test_kpull_with_no_runs_says_so_in_one_line(tmp_path):
    result = cli(tmp_path, "kpull", "outputs")
    assert result.returncode == 0
    assert "no runs recorded for digits-demo" in one_line(result)
    assert "┏" not in result.stdout  # no empty table
    as_json = cli(tmp_path, "kpull", "outputs", "--format", "json")
    assert as_json.returncode == 0 and as_json.stdout.strip() == "[]"


def test_ksubmit_with_no_runs_says_how_to_start_one(tmp_path):
    result = cli(tmp_path, "ksubmit", "ensemble")
    assert result.returncode == 2
    assert "no finished runs for digits-demo" in one_line(result) and "kpush train" in result.stderr


def test_a_damaged_registry_is_set_aside_in_one_line(tmp_path):
    store = tmp_path / ".toolkit" / "runs.sqlite"
    store.parent.mkdir()
    store.write_bytes(b"this is not a database" * 100)
    result = cli(tmp_path, "kstatus", "--no-refresh")
    assert result.returncode == 0, result.stderr
    line = one_line(result)
    assert "could not be read" in line and "moved it to .toolkit/runs.sqlite.damaged-" in line
    assert "delete that once you no longer need it" in line and "DatabaseError" not in line
    (aside,) = store.parent.glob("runs.sqlite.damaged-*")
    assert aside.read_bytes().startswith(b"this is not a database")
    again = cli(tmp_path, "kstatus", "--no-refresh")  # the new registry is sound: nothing more to say
    assert again.returncode == 0 and again.stderr == ""


def test_a_large_sweep_says_each_note_once_with_a_count(demo, tmp_path):
    rows = "".join(f'\n[[run]]\nname = "tiny-{i}"\nseed = {i}\n' for i in range(30))
    sweep = tmp_path / "big.toml"
    sweep.write_text('[defaults]\narch = "resnet18"\nitem = "Resize(16)"\nbatch = "aug_transforms(size=16)"\n'
                     f'epochs = 1\npretrained = true\n{rows}')
    result = cli(demo, "kpush", "sweep", str(sweep), "--dry-run")
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == ["note: resnet18: no local pretrained weights, training from scratch (x30)"]


def test_kstop_needs_names_and_on_kaggle_points_to_the_web_ui(tmp_path):
    assert "name the runs to stop" in one_line(cli(tmp_path, "kstop"))
    result = cli(tmp_path, "kstop", "--all", "--backend", "kaggle")
    assert result.returncode == 2
    line = one_line(result)
    assert "Kaggle has no cancel call" in line and "web UI" in line
