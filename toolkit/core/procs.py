"""Whether a process on this machine is still alive (for claims, runners and staging folders)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def pid_alive(pid: object) -> bool:
    """True while process `pid` runs; an unreaped child (a zombie) counts as gone."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def remove_abandoned(folder: Path, pattern: str) -> None:
    """Remove the staging folders matching `pattern` (named `...-<pid>`) in `folder` whose command was killed."""
    for leftover in folder.glob(pattern):
        pid = leftover.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)
