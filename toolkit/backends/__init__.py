"""Backends run rendered kernel folders, behind one protocol (base): `kaggle` through the official client, with
its failures translated in one place, its credentials and `kpull data`'s download (kaggle/), and `local`, which
runs the same notebooks on this machine in Kaggle's layout, limits and package set (local/), and `ray`, which runs
the same sandboxes as jobs on a Ray cluster (ray/). Each is found by name here and imported only when chosen."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from toolkit.backends.base import Backend
    from toolkit.core.config import Config

# Each backend by name: its module and class, imported only when chosen (kaggle's client needs credentials).
REGISTRY = {"local": (".local.backend", "LocalBackend"), "kaggle": (".kaggle.backend", "KaggleBackend"),
            "ray": (".ray.backend", "RayBackend")}


def backend_class(name: str) -> "type[Backend]":
    """The class of the backend called `name` (importing it connects to nothing)."""
    module, cls = REGISTRY[name]
    return getattr(importlib.import_module(module, __package__), cls)


def get_backend(config: "Config") -> "Backend":
    """The configured backend, connected (kaggle needs credentials)."""
    return backend_class(config.backend)(config)
