"""Copying a kernel's outputs out of its working folder without trusting what it wrote."""

from __future__ import annotations

import shutil
from pathlib import Path

from toolkit.core.errors import UnsafeOutput


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
