"""How each run of a finished pack kernel ended, from the `pack.json` it writes (read by refreshing, so that a
finished run is never lost to its failed partner). Reading only: forming and rendering packs is pack.py's."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from toolkit.backends.base import KernelState
from toolkit.core.errors import ToolkitError
from toolkit.core.status import Status
from toolkit.kernel.contract import PACK_FILE, check_pack
from toolkit.project import Project


def member_states(project: Project, kernel: str, version: int, state: KernelState) -> dict[str, KernelState]:
    """Each packed run's own end, read from the finished pack kernel's pack.json. Empty while it runs, or
    when it wrote none (killed, stopped, or rendered before per-run results): every run then shares the
    kernel's state."""
    if not state.status.terminal or state.status == Status.CANCEL_ACKNOWLEDGED:
        return {}
    states = {}
    for slug, entry in _read_results(project, kernel, version).items():
        if entry["status"] == Status.COMPLETE.value:
            states[slug] = KernelState(Status.COMPLETE)
        else:
            states[slug] = KernelState(Status.ERROR, (entry.get("message") or "the run failed")[:500])
    return states


def _read_results(project: Project, kernel: str, version: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            project.backend.output(kernel, version, Path(tmp), (PACK_FILE,))
            return check_pack(json.loads((Path(tmp) / PACK_FILE).read_text()))
        except (ToolkitError, OSError, ValueError):  # no such file, not JSON, or not the contract's: the kernel's
            return {}
