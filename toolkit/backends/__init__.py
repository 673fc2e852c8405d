"""Backends run rendered kernel folders: `local` on this machine, `kaggle` on Kaggle."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config
    from .base import Backend


def backend_class(name: str) -> "type[Backend]":
    """The class of the backend called `name`, imported only when chosen (neither imports a client)."""
    if name == "kaggle":
        from .kaggle import KaggleBackend
        return KaggleBackend
    from .local import LocalBackend
    return LocalBackend


def get_backend(config: "Config") -> "Backend":
    """The configured backend, connected (kaggle needs credentials)."""
    return backend_class(config.backend)(config)
