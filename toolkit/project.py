"""A project: its configuration, its run registry and its backend, opened lazily."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .config import Config
from .store import Store


@dataclass
class Project:
    config: Config

    @cached_property
    def store(self) -> Store:
        return Store(self.config.store_path)

    @cached_property
    def backend(self):
        from .backends import get_backend
        return get_backend(self.config)

    @property
    def username(self) -> str:
        """Owner of the kernels: `username` from the configuration, else the backend's (Kaggle: from the
        credentials), so rendering with a configured username needs no credentials."""
        return self.config.username or self.backend.username

    @property
    def poll_intervals(self) -> tuple[float, float]:
        """Local kernels are checked often; Kaggle's API asks for 30 s or more between polls."""
        if self.config.backend == "local" and not self.config.explicit_poll:
            return 1.0, 5.0
        return self.config.poll_initial_s, self.config.poll_max_s
