"""`kpull data`: the real console script downloads a competition from the Kaggle emulator (through the real
kaggle 2.2.5 client, driven by fastkaggle's setup_comp), checks it and puts it in competitions/<slug>/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from emulator import KaggleEmulator, build_tiny_competition

from toolkit.competitions.demo import build_competition
from toolkit.competitions.layout import check_competition

BIN = Path(sys.executable).parent
USER, KEY = "testuser", "fake-key-9c1d2e3f4a5b6c7d"
COMP = "digits-demo"


@pytest.fixture
def emulator(tmp_path):
    served = tmp_path / "served"
    build_competition(served, COMP, limit=40)
    (served / COMP / "hidden_test" / "test_images").mkdir(parents=True)
    (served / COMP / "hidden_test" / "test_images" / "secret.png").write_bytes(b"not for entrants")
    build_tiny_competition(served, "tiny-comp")
    emu = KaggleEmulator(tmp_path / "emu", served, USER, KEY).start()
    yield emu
    emu.stop()


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def kpull(emu: KaggleEmulator, project: Path, *args: str, credentials: bool = True,
          **extra: str) -> subprocess.CompletedProcess:
    """The installed `kpull` with the client pointed at the emulator; a throwaway HOME and config dir."""
    home = project.parent / "home"
    (home / ".kaggle").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOOLKIT_", "KAGGLE_"))}
    env.update(emu.client_env(), HOME=str(home), KAGGLE_CONFIG_DIR=str(home / ".kaggle"),
               TOOLKIT_PROJECT=str(project), COLUMNS="200", **extra)
    if credentials:
        env.update(KAGGLE_USERNAME=USER, KAGGLE_KEY=KEY)
    return subprocess.run([str(BIN / "kpull"), "data", *args], cwd=project, env=env, capture_output=True,
                          text=True, timeout=180)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr
    assert KEY not in result.stdout + result.stderr
    return lines[0]


def files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_downloads_unpacks_and_checks_the_competition(emulator, project):
    result = kpull(emulator, project, "--competition", COMP)
    assert result.returncode == 0, result.stderr
    assert "ready: competitions/digits-demo (30 training images in 10 classes, 10 test images)" in result.stdout
    assert KEY not in result.stdout + result.stderr
    folder = project / "competitions" / COMP
    check_competition(folder)
    served = emulator.competitions_root / COMP
    public = {n for n in files(served) if n != "solution.csv" and not n.startswith("hidden_test/")}
    assert files(folder) == public  # never the hidden labels or the hidden test set
    assert (folder / "sample_submission.csv").read_bytes() == (served / "sample_submission.csv").read_bytes()
    assert sorted(p.name for p in (project / "competitions").iterdir()) == [COMP]  # no zip, no staging folder
    calls = emulator.calls("DownloadDataFiles")
    assert [c.body for c in calls] == [{"competitionName": COMP}]

    again = kpull(emulator, project, "--competition", COMP)
    line = one_line_error(again)
    assert "already exists" in line and "--force" in line
    assert len(emulator.calls("DownloadDataFiles")) == 1  # nothing downloaded

    (folder / "stale.txt").write_text("from an older download")
    forced = kpull(emulator, project, "--competition", COMP, "--force")
    assert forced.returncode == 0, forced.stderr
    assert files(folder) == public
    assert sorted(p.name for p in (project / "competitions").iterdir()) == [COMP]


def test_competition_comes_from_the_configuration(emulator, project):
    (project / "toolkit.toml").write_text('competition = "digits-demo"\ncompetitions_root = "data/comps"\n')
    result = kpull(emulator, project)
    assert result.returncode == 0, result.stderr
    check_competition(project / "data" / "comps" / COMP)


def test_a_truncated_download_is_resumed(emulator, project):
    emulator.fail("download", "truncate")
    result = kpull(emulator, project, "--competition", COMP)
    assert result.returncode == 0, result.stderr
    check_competition(project / "competitions" / COMP)
    assert len(emulator.calls("download")) == 2  # the cut-off request, then the rest by Range


def test_a_silent_download_is_stopped_and_leaves_nothing(emulator, project):
    emulator.fail("DownloadDataFiles", "hang", seconds=8)
    line = one_line_error(kpull(emulator, project, "--competition", COMP, TOOLKIT_API_TIMEOUT_S="1"))
    assert "Kaggle sent nothing for 1 s while downloading digits-demo" in line
    assert list(project.iterdir()) == []


def test_unknown_competition_is_one_line_and_leaves_nothing(emulator, project):
    line = one_line_error(kpull(emulator, project, "--competition", "no-such-comp"))
    assert "no competition 'no-such-comp' on Kaggle (HTTP 404)" in line
    assert "accept its rules" in line
    assert list(project.iterdir()) == []


def test_rules_not_accepted_is_one_line_with_the_hint(emulator, project):
    emulator.rules_unaccepted.add(COMP)
    line = one_line_error(kpull(emulator, project, "--competition", COMP))
    assert "HTTP 403" in line and "You must accept this competition's rules" in line
    assert f"kaggle.com/competitions/{COMP}/rules" in line
    assert list(project.iterdir()) == []


def test_missing_credentials_are_one_line_and_nothing_is_asked(emulator, project):
    line = one_line_error(kpull(emulator, project, "--competition", COMP, credentials=False))
    assert "no Kaggle credentials found" in line and "Generate New Token" in line
    assert emulator.requests == []
    assert list(project.iterdir()) == []


def test_an_invalid_slug_is_refused_before_any_request(emulator, project):
    line = one_line_error(kpull(emulator, project, "--competition", "../escape"))
    assert "not a valid competition slug" in line
    assert emulator.requests == []


def test_a_competition_in_another_shape_is_kept_aside(emulator, project):
    line = one_line_error(kpull(emulator, project, "--competition", "tiny-comp"))
    root = project / "competitions"
    kept = root / ".tiny-comp.unchecked"
    assert "not in Paddy's shape" in line and "no train_images/ folder" in line and str(kept) in line
    assert sorted(p.name for p in root.iterdir()) == [".tiny-comp.unchecked"]  # no zip, nothing under tiny-comp
    assert files(kept) == {"sample_submission.csv"}


def test_a_csv_labelled_competition_is_counted_by_its_labels(tmp_path, project):
    """train_images/<image> with train.csv: checked as such, and its classes are the CSV's, not one folder."""
    from toolkit.competitions.demo import CSV_NAME

    served = tmp_path / "served-csv"
    build_competition(served, limit=40, csv_labels=True)
    emu = KaggleEmulator(tmp_path / "emu-csv", served, USER, KEY).start()
    try:
        result = kpull(emu, project, "--competition", CSV_NAME)
    finally:
        emu.stop()
    assert result.returncode == 0, result.stderr
    assert f"ready: competitions/{CSV_NAME} (30 training images in 10 classes, 10 test images)" in result.stdout
    assert (project / "competitions" / CSV_NAME / "train.csv").is_file()
