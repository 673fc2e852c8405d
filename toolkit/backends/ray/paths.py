"""Where the ray backend keeps things. Every node reads and writes them, so they live under `[ray] shared` (a
shared filesystem on a cluster; by default the project's .toolkit/ray, which every node of a workstation sees),
laid out as the local backend's root, whose sandbox, queue and runner code they share:

  kernels/<slug>/v<N>/   a version's sandbox (local/sandbox.py lays it out; its state.json names its Ray job)
  image/                 each node's links to Kaggle's packages (local/session.py)
  .lock                  the one lock for every state change

Competitions are read where the nodes read them, `[ray] data` (default: competitions_root).
"""

from __future__ import annotations

from pathlib import Path

from toolkit.backends.local import paths as local_paths
from toolkit.core.config import Config, replace
from toolkit.core.errors import BackendError


def root(config: Config) -> Path:
    shared = config.ray.shared
    return config.resolve(shared) if shared is not None else config.state_dir / "ray"


def data_root(config: Config) -> Path:
    return config.resolve(config.ray.data if config.ray.data is not None else config.competitions_root)


def sandbox_config(config: Config) -> Config:
    """The configuration sandboxes are laid out with: competitions where the nodes read them."""
    return replace(config, competitions_root=data_root(config))


def username(config: Config) -> str:
    return config.username or "ray"


def existing_version(config: Config, slug: str, version: int) -> Path:
    """The sandbox of that version, refused unless it was made (its state.json is written last)."""
    run_dir = local_paths.version_dir(root(config), slug, version)
    if not (run_dir / "state.json").exists():
        raise BackendError(f"kernel {username(config)}/{slug} version {version} does not exist on the ray backend")
    return run_dir
