"""On Kaggle a lost registry must not cost GPU quota: over the real kaggle 2.2.5 client and the emulator,
a deleted `.toolkit/runs.sqlite` is rebuilt from the kernels Kaggle holds for the folders in `kernels/`,
and the same `kpush train` finds its run pushed instead of pushing it again. kstop says how to stop a
kernel there (no cancel call)."""

from __future__ import annotations

from typer.testing import CliRunner

from kaggle_emulator import KaggleEmulator, build_tiny_competition, prepare_client, use_emulator

prepare_client()  # before anything imports kaggle

import pytest  # noqa: E402

from toolkit import cli  # noqa: E402
from toolkit.backends.base import Status  # noqa: E402
from toolkit.config import load_config  # noqa: E402
from toolkit.project import Project  # noqa: E402

USER, KEY = "testuser", "recovery-key-0123456789abcdef"
COMP = "tiny-comp"
TRAIN = ["train", "--arch", "resnet18", "--item", "Resize(16)", "--batch", "aug_transforms(size=16)", "--epochs", "1",
         "--scratch", "--competition", COMP]


@pytest.fixture
def emulator(tmp_path, monkeypatch):
    build_tiny_competition(tmp_path / "competitions", COMP)
    emu = KaggleEmulator(tmp_path / "emu", tmp_path / "competitions", USER, KEY, polls_to_complete=1).start()
    use_emulator(emu, monkeypatch, tmp_path, USER, KEY, TOOLKIT_BACKEND="kaggle", TOOLKIT_POLL_INITIAL_S="0.1",
                 TOOLKIT_POLL_MAX_S="0.2", COLUMNS="200")
    yield emu
    emu.stop()


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
