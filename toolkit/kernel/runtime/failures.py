"""One line for a failure: from a kernel's error output or log, the line that names the real cause. Plain
Python: the local runner and the tables use it, and pack kernels run it (pasted at render)."""

import re

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)|KeyboardInterrupt)\b")


def cause(message: str, limit: int = 300) -> str:
    """One line for a failure. A message holding a traceback (a DataLoader worker's error carries its
    whole traceback) is reduced to its last line naming an exception: the real cause."""
    lines = [line.strip() for line in ANSI.sub("", message or "").splitlines() if line.strip()]
    if not lines:
        return ""
    errors = [line for line in lines if ERROR_LINE.match(line)]
    line = errors[-1] if len(lines) > 1 and errors else lines[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."


def cell_label(cell):
    "How Jupyter shows an executed code cell beside it, In [7]: one numbering for every failure message."
    count = cell.get('execution_count') if isinstance(cell, dict) else None
    return f'In [{count}]' if count else 'a cell'
