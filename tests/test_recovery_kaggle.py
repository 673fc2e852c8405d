"""On Kaggle a lost registry must not cost GPU quota: over the real kaggle 2.2.5 client and the emulator,
a deleted `.toolkit/runs.sqlite` is rebuilt from the kernels Kaggle holds for the folders in `kernels/`,
and the same `kpush train` finds its run pushed instead of pushing it again. kstop says how to stop a
kernel there (no cancel call)."""

from __future__ import annotations

import pytest
from emulator import build_tiny_competition
from typer.testing import CliRunner

from toolkit import cli
from toolkit.core.config import load_config
from toolkit.core.status import Status
from toolkit.project import Project

COMP = "tiny-comp"
TRAIN = ["train", "--arch", "resnet18", "--item", "Resize(16)", "--batch", "aug_transforms(size=16)", "--epochs", "1",
         "--scratch", "--competition", COMP]


@pytest.fixture
def emulator(start_emulator, tmp_path):
    build_tiny_competition(tmp_path / "competitions", COMP)
    return start_emulator(polls_to_complete=1, env=dict(TOOLKIT_BACKEND="kaggle", TOOLKIT_POLL_INITIAL_S="0.1",
                                                        TOOLKIT_POLL_MAX_S="0.2", COLUMNS="200"))


def invoke(app, *args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_a_lost_registry_is_rebuilt_from_kaggle_and_nothing_is_pushed_twice(emulator, tmp_path):
    assert invoke(cli.push_app, *TRAIN).exit_code == 0
    assert invoke(cli.status_app, "--watch").exit_code == 0
    project = Project(load_config())
    (run,) = project.store.runs()
    assert run.status == Status.COMPLETE and run.version == 1

    project.config.store_path.unlink()
    again = invoke(cli.push_app, *TRAIN)
    assert again.exit_code == 0, again.output
    assert "already pushed as version 1 (COMPLETE)" in again.output
    assert "rebuilt 1 runs from the kaggle backend (1 COMPLETE)" in again.output
    assert len(emulator.calls("SaveKernel")) == 1  # no second push: no quota spent twice
    (rebuilt,) = Project(load_config()).store.runs()
    assert (rebuilt.slug, rebuilt.status, rebuilt.version) == (run.slug, Status.COMPLETE, 1)
    assert rebuilt.url and rebuilt.spec == run.spec


def test_kstop_on_kaggle_points_to_the_web_ui(emulator):
    assert invoke(cli.push_app, *TRAIN).exit_code == 0
    with pytest.raises(Exception) as info:
        invoke(cli.stop_app, "--all")
    text = str(info.value)
    assert "Kaggle has no cancel call" in text and "kaggle.com/code/testuser/" in text
