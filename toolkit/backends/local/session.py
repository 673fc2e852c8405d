"""A local kernel's Python, as a Kaggle session has it: Kaggle's package set and nothing else, and a pip whose
installs stay in the session.

- **Kaggle's packages.** `image_site` is a folder of links to the distributions of this environment that
  Kaggle's image has (the list in toolkit/data, with what they need, and Jupyter's kernel machinery), built once
  per environment and package list. A kernel sees only those: importing fastkaggle or the toolkit fails as it
  does there, and pip counts only those as installed, so `pip install fastkaggle` installs it, as there.
- **The session's own installs.** Each version gets a virtual environment of its own (`<run>/session/`) over
  that folder: `!pip install`, `%pip install` and fastkaggle's `setup_comp(..., install=...)` install into it,
  never into the toolkit's environment (pip leaves packages outside its environment alone: "Not uninstalling
  ... outside environment"), and it is removed when the version ends, as a Kaggle session's are.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import site
import sysconfig
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importlib.metadata and venv only where a session is built, not at every command's start
    from importlib import metadata

# Jupyter's kernel machinery: every Kaggle session has it, whatever versions this machine has.
INFRASTRUCTURE = ("ipykernel",)
SESSION = "session"  # the version's own environment, inside its sandbox


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _site_packages(prefix: str) -> Path:
    """The site-packages folder of the environment at `prefix` (the session's own)."""
    return Path(sysconfig.get_path("purelib", vars={"base": prefix, "platbase": prefix}))


def image_names(package_list: Path) -> set[str]:
    """The distribution names in Kaggle's package list (`name==version` lines, or `name>=...` where only a bound
    is known)."""
    return {_norm(re.match(r"[A-Za-z0-9._-]+", line).group(0)) for line in package_list.read_text().splitlines()
            if line.strip() and not line.startswith("#")}


def allowed(dists: dict[str, metadata.Distribution], image: set[str]) -> set[str]:
    """The distributions a kernel sees: those in the image, the machinery, and everything they need."""
    seen, todo = set(), [name for name in (image | set(INFRASTRUCTURE)) if name in dists]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for requirement in dists[name].requires or []:
            needed = _norm(re.match(r"[A-Za-z0-9._-]+", requirement).group(0))
            if "extra ==" not in requirement and needed in dists:
                todo.append(needed)
    return seen


def _entries(dists: dict[str, metadata.Distribution], kept: set[str]) -> dict[str, Path]:
    """The top-level files and folders that the kept distributions installed, where they are."""
    entries = {}
    for name in kept:
        for file in dists[name].files or []:
            if file.parts[0] not in ("..", "__pycache__"):
                entries.setdefault(file.parts[0], Path(dists[name].locate_file(file.parts[0])))
    return entries


def image_site(cache: Path, package_list: Path) -> Path:
    """The folder of links to Kaggle's packages in this environment (built once, under `cache`)."""
    sites = [Path(p) for p in (*site.getsitepackages(), site.getusersitepackages()) if Path(p).is_dir()]
    stamp = "|".join(f"{p}:{p.stat().st_mtime_ns}" for p in sites).encode() + package_list.read_bytes()
    target = cache / f"image-site-{hashlib.sha256(stamp).hexdigest()[:16]}"
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    from importlib import metadata

    building = Path(tempfile.mkdtemp(prefix=".image-site-", dir=cache))
    dists: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():  # in import order: the first of a name is the one a kernel would get
        if dist.metadata["Name"]:
            dists.setdefault(_norm(dist.metadata["Name"]), dist)
    for entry, where in sorted(_entries(dists, allowed(dists, image_names(package_list))).items()):
        if where.exists():
            (building / entry).symlink_to(where)
    try:
        building.rename(target)
    except OSError:  # another kernel built it first
        shutil.rmtree(building, ignore_errors=True)
    return target


def create(run_dir: Path, image: Path) -> dict[str, str]:
    """The version's own environment over `image` (image_site's folder); the variables its kernel runs with."""
    import venv

    home = run_dir / SESSION
    venv.EnvBuilder(with_pip=False, symlinks=True).create(home)
    python = home / "bin" / "python"
    own = _site_packages(str(home))
    # addsitedir, not a plain path: the .pth files of Kaggle's packages (setuptools' distutils shim) apply too.
    (own / "_kaggle_image.pth").write_text(f"import site; site.addsitedir({str(image)!r})\n")
    for name in ("pip", "pip3"):  # `!pip` in a notebook runs the session's pip
        script = home / "bin" / name
        script.write_text(f'#!/bin/sh\nexec "{python}" -m pip "$@"\n')
        script.chmod(0o755)
    spec = home / "share" / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))
    return {"VIRTUAL_ENV": str(home), "PATH": f"{home / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "JUPYTER_PATH": str(home / "share" / "jupyter")}


def remove(run_dir: Path) -> None:
    """The session's environment goes with the session."""
    shutil.rmtree(run_dir / SESSION, ignore_errors=True)
