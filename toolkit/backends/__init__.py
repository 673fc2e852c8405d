"""Backends run rendered kernel folders: `local` on this machine, `kaggle` on Kaggle."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config
    from .base import Backend


def get_backend(config: "Config") -> "Backend":
    """The configured backend; each is imported only when chosen (kaggle needs credentials)."""
    if config.backend == "kaggle":
        from .kaggle import KaggleBackend
        return KaggleBackend(config)
    from .local import LocalBackend
    return LocalBackend(config)
