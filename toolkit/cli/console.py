"""The two consoles commands print to: stdout for tables and results, stderr for notes and errors."""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.markup import escape

# Wide tables stay readable when output goes to a file or CI log instead of a terminal.
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 220)
errors = Console(stderr=True, width=None if sys.stderr.isatty() or os.environ.get("COLUMNS") else 220)


def note(line: str) -> None:
    errors.print(f"[yellow]note:[/] {escape(line)}", highlight=False, soft_wrap=True)
