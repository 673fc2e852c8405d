"""A project: its configuration, its run registry and its backend, opened lazily."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.core.config import Config
from toolkit.core.errors import ConfigError
from toolkit.registry.store import Store

if TYPE_CHECKING:
    from toolkit.backends.base import Backend
    from toolkit.registry.records import Run


class Project:
    def __init__(self, config: Config, backend: Backend | None = None, offline: bool = False):
        """`backend`: the one to use (a test's), else the configured one, connected on first use. `offline`:
        never connect to it (a dry run renders with what is known here)."""
        self.config = config
        self._backend = backend
        self.offline = offline

    @cached_property
    def store(self) -> Store:
        return Store(self.config.store_path)

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            from toolkit.backends import get_backend
            self._backend = get_backend(self.config)
        return self._backend

    @property
    def backend_type(self) -> type[Backend]:
        """The backend's class: what it can do and where it finds things, without connecting to it (so
        planning a run for Kaggle needs no credentials)."""
        if self._backend is not None:
            return type(self._backend)
        from toolkit.backends import backend_class
        return backend_class(self.config.backend)

    @property
    def username(self) -> str:
        """Owner of the kernels: `username` from the configuration, else the backend's (Kaggle: from the
        credentials), so rendering with a configured username needs no credentials. Offline, only what the
        credentials name without a call (Backend.known_username)."""
        if self.config.username:
            return self.config.username
        if not self.offline:
            return self.backend.username
        known = self.backend_type.known_username(self.config)
        if not known:
            raise ConfigError(f"rendering for {self.config.backend} without connecting needs your username for the "
                              "kernel ids", "set username in toolkit.toml or TOOLKIT_USERNAME (or KAGGLE_USERNAME)")
        return known

    def path(self, kept: str) -> Path | None:
        """A path the registry keeps (relative to the project, so a moved or copied project reads its own
        files), as this project's; None for none."""
        return self.config.project_dir / kept if kept else None

    def kept(self, path: Path) -> str:
        """How the registry keeps a path of this project: relative to it."""
        return Path(path).resolve().relative_to(self.config.project_dir.resolve()).as_posix()

    def run_folder(self, run: Run) -> Path | None:
        """Where the run's downloaded outputs are (None: not downloaded)."""
        return self.path(run.output_dir)

    @property
    def poll_intervals(self) -> tuple[float, float]:
        """The backend's own intervals unless the user set some (Kaggle's API asks for 30 s or more)."""
        own = self.backend_type.poll_s
        if own is not None and not self.config.explicit_poll:
            return own
        return self.config.poll_initial_s, self.config.poll_max_s
