"""Running the toolkit's real console scripts (kpush, kpull, ksubmit, kstatus, kstop, klogs) the way a user does: a
fresh process in the project folder, with this process's environment (the emulator's settings included)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def console(project: Path, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """`args[0]` (a console script) with the rest as its arguments, in `project`, with `env` added."""
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=project, env=_environ(project, env),
                          capture_output=True, text=True, timeout=timeout)


def outside(project: Path, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """`console`, as a user whose shell sets no TOOLKIT_ or KAGGLE_ variable (this process's are left out)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("TOOLKIT_", "KAGGLE_"))}
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=project, env=_environ(project, env, inherited),
                          capture_output=True, text=True, timeout=timeout)


def started(project: Path, *args: str, stdout=subprocess.PIPE, **env: str) -> subprocess.Popen:
    """The same, left running (its output read while it runs); stderr is captured."""
    return subprocess.Popen([str(BIN / args[0]), *args[1:]], cwd=project, env=_environ(project, env), stdout=stdout,
                            stderr=subprocess.PIPE, text=True, bufsize=1)


def _environ(project: Path, env: dict[str, str], inherited=os.environ) -> dict[str, str]:
    return {**inherited, "TOOLKIT_PROJECT": str(project), "COLUMNS": "200", **env}


def one_line(result: subprocess.CompletedProcess) -> str:
    """The only line on stderr, which must not hold a traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def error_line(result: subprocess.CompletedProcess) -> str:
    """The error line on stderr (notes may come before it), which must be its last, with no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and lines and lines[-1].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return lines[-1]
