"""A registry file that is not a sound database: telling damage from a busy file, setting it aside, and the
lock that opening, setting aside and rebuilding take turns under."""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

JOURNALS = ("-wal", "-shm")
DAMAGE = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}  # SQLite's names for a file that is not a sound database


class Damaged(Exception):
    """SQLite's own check found the registry file unsound."""


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock beside the registry: opening, setting aside and rebuilding take turns."""
    with open(path.with_name(path.name + ".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def drop_orphan_journals(path: Path) -> None:
    """A write-ahead log left beside a deleted registry belongs to no file; SQLite would replay it
    into the new one."""
    if not path.exists():
        for suffix in JOURNALS:
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def is_damage(exc: BaseException) -> bool:
    """A damaged file, as opposed to a busy or locked one (which only needs waiting for)."""
    return isinstance(exc, Damaged) or getattr(exc, "sqlite_errorname", "") in DAMAGE


def set_aside(path: Path) -> Path:
    """Move the unreadable file (and its journals) out of the way, keeping it for inspection."""
    target = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    os.replace(path, target)
    for suffix in JOURNALS:
        if Path(f"{path}{suffix}").exists():
            os.replace(f"{path}{suffix}", f"{target}{suffix}")
    return target
