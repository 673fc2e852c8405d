"""A sandbox: one version's folder in Kaggle's layout, laid out and queued, and its outputs copied out.

  kernel/       the folder as pushed      input/<source>  competition, datasets, kernel outputs (links)
  working/      the kernel's cwd, outputs  state.json      status, pid, failure message (queue.py)
  log.txt       everything it printed      executed.ipynb  the notebook with its outputs
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from toolkit.backends.local import paths
from toolkit.backends.local.inputs import mount_all
from toolkit.backends.local.queue import write_state
from toolkit.core.config import Config
from toolkit.core.errors import UnsafeOutput
from toolkit.core.status import Status

# Loaded by the kernel's Python processes: Kaggle's Python, read-only inputs, no internet (see its docstring).
KAGGLE_SITE = Path(__file__).resolve().parent / "kaggle_site"
KAGGLE_IMAGE = Path(__file__).resolve().parents[2] / "data" / "kaggle_image_packages.txt"
# What Kaggle sets in a code competition's rerun (notebooks test it with os.getenv, so any non-empty value does).
RERUN_ENV = {"KAGGLE_IS_COMPETITION_RERUN": "1"}


def internet_enabled(meta: dict) -> bool:
    """kernel-metadata's enable_internet, absent meaning on (kaggle 2.2.5 kernels_push: get_bool(..., True))."""
    value = meta.get("enable_internet", True)
    return value if isinstance(value, bool) else str(value).strip().lower() not in ("false", "0", "no")


def kernel_env(read_only: list[str], internet: bool = True) -> dict[str, str]:
    """What the kernel process gets on top of the runner's environment."""
    path = os.pathsep.join(p for p in (str(KAGGLE_SITE), os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": path, "TOOLKIT_READONLY": os.pathsep.join(read_only)}
    return env if internet else {**env, "TOOLKIT_NO_INTERNET": "1"}


def lay_out(config: Config, run_dir: Path, kernel: Path, inputs: dict[str, Path], internet: bool, state: dict,
            rerun: bool = False) -> None:
    """Fill a new sandbox (the caller holds the lock): the kernel folder as pushed, its inputs as Kaggle
    mounts them, an empty working folder, and state.json (QUEUED) last; a half-made one is removed."""
    try:
        shutil.copytree(kernel, run_dir / "kernel")
        read_only = mount_all(config, run_dir / "input", inputs, rerun)
        (run_dir / "working").mkdir()
        env = {**kernel_env(read_only, internet), **(RERUN_ENV if rerun else {})}
        write_state(run_dir, {"status": Status.QUEUED.value, "queued_at": time.time(), **state, "kernel_env": env})
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise


def new_version(root: Path, slug: str) -> tuple[int, Path]:
    """The next version's empty folder (the caller holds the lock)."""
    version = (paths.versions(root, slug) or [0])[-1] + 1
    run_dir = paths.version_dir(root, slug, version)
    run_dir.mkdir(parents=True)
    return version, run_dir


def versions_made(root: Path, slug: str) -> list[int]:
    """The versions whose sandbox was laid out to the end (state.json is written last)."""
    return [v for v in paths.versions(root, slug) if (paths.version_dir(root, slug, v) / "state.json").exists()]


def remove_unfinished(root: Path, slug: str) -> None:
    """A version folder without state.json is a push killed half way (state.json is written last, under
    the lock the caller holds): it never became a version, so it goes."""
    for version in paths.versions(root, slug):
        run_dir = paths.version_dir(root, slug, version)
        if not (run_dir / "state.json").exists():
            shutil.rmtree(run_dir, ignore_errors=True)


def safe_child(folder: Path, name: str) -> Path:
    """`folder/name`, refused if the name (or a link on the way) leads outside `folder`."""
    root = folder.resolve()
    target = (folder / name).resolve()
    if target != root and root not in target.parents:
        raise UnsafeOutput(f"output '{name}' points outside its folder and was not copied",
                           "outputs must be plain files inside the kernel's working directory")
    return target


def copy_outputs(working: Path, dest: Path, names: tuple[str, ...], max_bytes: int) -> list[Path]:
    """Copy the named files that exist; links out of the sandbox and oversized files are refused."""
    copied = []
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = safe_child(working, name)
        if not source.exists():
            continue
        if not source.is_file():
            raise UnsafeOutput(f"output '{name}' is not a regular file")
        size = source.stat().st_size
        if size > max_bytes:
            raise UnsafeOutput(f"output '{name}' is {size} bytes, over the {max_bytes}-byte limit",
                               "raise max_output_mb in toolkit.toml if this is expected")
        target = safe_child(dest, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copied.append(target)
    return copied
