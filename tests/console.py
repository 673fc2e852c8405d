"""Running the toolkit's real console scripts (kpush, kpull, ksubmit, kstatus, kstop) the way a user does: a
fresh process in the project folder, with this process's environment (the emulator's settings included)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def console(project: Path, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """`args[0]` (a console script) with the rest as its arguments, in `project`, with `env` added."""
    environ = {**os.environ, "TOOLKIT_PROJECT": str(project), "COLUMNS": "200", **env}
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=project, env=environ, capture_output=True,
                          text=True, timeout=timeout)


def one_line(result: subprocess.CompletedProcess) -> str:
    """The only line on stderr, which must not hold a traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]
