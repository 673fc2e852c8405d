"""Set-up the tests share: the real kaggle client pointed at the emulator, emulators, the backends, and a real Ray
cluster on this machine for the ray backend."""

from __future__ import annotations

import os
import shutil

import pytest
from emulator import KEY, USER, KaggleEmulator, prepare_client, use_emulator

# The consoles' width is fixed when the toolkit is first imported: the width a pipe gets (cli/console.py), however
# the tests are run (pytest-xdist's workers see a terminal's COLUMNS otherwise).
os.environ["COLUMNS"] = "220"

# The client fixes its API environment and config directory when first imported: before any test module
# imports it (directly or through toolkit.backends.kaggle.backend).
prepare_client()


@pytest.fixture
def start_emulator(tmp_path, monkeypatch):
    """start_emulator(competitions=None, env=None, **options): an emulator serving `competitions` (default
    tmp_path/competitions), with the client and the toolkit pointed at it (credentials USER/KEY, a throwaway
    HOME, tmp_path/project as the project, `env` as extra settings); stopped after the test."""
    started: list[KaggleEmulator] = []

    def start(competitions=None, env: dict | None = None, **options) -> KaggleEmulator:
        emu = KaggleEmulator(tmp_path / f"emu{len(started) or ''}", competitions or tmp_path / "competitions",
                             USER, KEY, **options).start()
        started.append(emu)
        use_emulator(emu, monkeypatch, tmp_path, USER, KEY, **(env or {}))
        return emu

    yield start
    for emu in started:
        emu.stop()


@pytest.fixture
def kaggle_backend(tmp_path):
    """kaggle_backend(**settings): the Kaggle backend of tmp_path/project (start an emulator first)."""
    from toolkit.backends.kaggle.backend import KaggleBackend
    from toolkit.core.config import load_config

    return lambda **settings: KaggleBackend(load_config(tmp_path / "project", backend="kaggle", **settings))


@pytest.fixture
def local_backend(tmp_path):
    """local_backend(limit=40, code=False, **settings): the local backend of tmp_path, one kernel at a time,
    with the demo competition (`code`: its code-competition variant) of `limit` images in tmp_path/competitions."""
    from toolkit.backends.local.backend import LocalBackend
    from toolkit.competitions.demo import build_competition
    from toolkit.core.config import load_config

    def make(limit: int = 40, code: bool = False, **settings) -> LocalBackend:
        build_competition(tmp_path / "competitions", limit=limit, code=code)
        return LocalBackend(load_config(tmp_path, **{"concurrency": 1, **settings}))

    return make


@pytest.fixture(scope="session")
def ray_cluster():
    """A real two-node Ray cluster on this machine (ray_cluster.py), one logical GPU each, token authentication
    on; stopped with `ray stop --force` after the session whatever happens, a failed start included."""
    import ray_cluster as cluster

    cluster.stop_on_exit()
    started = None
    try:
        started = cluster.start()
        yield started
    finally:
        cluster.stop()
        if started is not None:  # its logs and sockets
            shutil.rmtree(started.temp, ignore_errors=True)


@pytest.fixture
def ray_env(ray_cluster, monkeypatch):
    """The cluster's address and token, for a client in this process."""
    for key, value in ray_cluster.env.items():
        monkeypatch.setenv(key, value)
    return ray_cluster
