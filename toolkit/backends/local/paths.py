"""Where the local backend of a project keeps things, under `.toolkit/local/`:

  kernels/<slug>/v<N>/   a pushed version's sandbox (sandbox.py lays it out)
  reruns/<slug>/<ref>/   a code competition rerun's sandbox, submission <ref> (rerun.py)
  submissions.json       the leaderboard (leaderboard.py)
  .lock                  the one lock for every state change (queue.py)

Every sandbox is three levels below the root, so a runner that knows only its sandbox finds the lock.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.core.config import Config
from toolkit.core.errors import BackendError


def root(config: Config) -> Path:
    return config.state_dir / "local"


def root_of(run_dir: Path) -> Path:
    """The root of the backend a sandbox belongs to."""
    return run_dir.parents[2]


def username(config: Config) -> str:
    """The account local kernels are pushed under."""
    return config.username or "local"


def version_dir(root: Path, slug: str, version: int) -> Path:
    return root / "kernels" / slug / f"v{version}"


def rerun_dir(root: Path, slug: str, ref: str) -> Path:
    return root / "reruns" / slug / ref


def versions(root: Path, slug: str) -> list[int]:
    """The version folders of `slug`, oldest first (made or half made: see sandbox.versions_made)."""
    folder = root / "kernels" / slug
    if not folder.is_dir():
        return []
    return sorted(int(p.name[1:]) for p in folder.iterdir() if p.name[:1] == "v" and p.name[1:].isdigit())


def sandboxes(root: Path) -> list[Path]:
    """Every sandbox folder: pushed versions first, then reruns."""
    return [*(root / "kernels").glob("*/v*"), *(root / "reruns").glob("*/*")]


def existing_version(config: Config, slug: str, version: int) -> Path:
    """The sandbox of that version, refused unless it was made (its state.json is written last)."""
    run_dir = version_dir(root(config), slug, version)
    if not (run_dir / "state.json").exists():
        raise BackendError(f"kernel {username(config)}/{slug} version {version} does not exist on the local backend")
    return run_dir
