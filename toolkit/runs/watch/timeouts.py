"""A session that ran past its limit, told apart from one that was stopped.

Kaggle ends a version that runs past its session limit CANCEL_ACKNOWLEDGED, with no failureMessage and no output
files, its log ending with nbclient's CellTimeoutError (backends/local/limits.py says where that comes from): as
it reports a version stopped in its web UI, but for the log. Such a version is put down to the limit when the last
lines of its log say CellTimeoutError, or, where the log says nothing, when it ended at least as long after its
push as the session limit it was pushed with (a session cannot run longer than it has existed, so a stop before
that is the user's). Its runs then carry a one-line cause (`cause`); runs/watch/pack_timeouts.py decides what becomes
of a pack's members.
"""

from __future__ import annotations

import re
import time

from toolkit.backends.base import KernelState
from toolkit.core.errors import ToolkitError
from toolkit.core.status import Status
from toolkit.project import Project
from toolkit.registry.records import Run

TIMED_OUT = "ran past the session limit"
CELL_TIMEOUT = re.compile(r"CellTimeoutError\b.*\bafter (\d+) seconds")
TAIL_LINES = 5  # the log's last lines that may hold the CellTimeoutError (a traceback's end may follow it)
# What to change, for a run that ran past the limit: kstatus and a wait's last line say it.
ADVICE = ("train fewer epochs or at a smaller image size, push it without --pack, or raise session_timeout_s "
          "(below Kaggle's 12 h maximum) before pushing it again, if your sessions may run that long")


def timed_out(run: Run) -> bool:
    """Whether the run's version ran past its session limit (as recorded by `explain`)."""
    return run.status == Status.CANCEL_ACKNOWLEDGED and run.failure_message.startswith(TIMED_OUT)


def explain(project: Project, run: Run, state: KernelState, logs: dict) -> KernelState:
    """The state to record for the run: a cancel with no message of its own gets the cause when its version ran
    past the session limit. `logs` keeps each kernel version's log, read once however many runs it trains."""
    if state.status != Status.CANCEL_ACKNOWLEDGED or state.failure_message:
        return state
    limit = ran_past(run, log_of(project, run, logs), time.time())
    return state if limit is None else KernelState(state.status, cause(run, limit))


def ran_past(run: Run, log: str, now: float) -> float | None:
    """The session limit (seconds) the run's version ran past, or None when it was stopped: the limit it was
    pushed with where known, else the one its log's CellTimeoutError names."""
    tail = log.rstrip().splitlines()[-TAIL_LINES:]
    said = [m for m in map(CELL_TIMEOUT.search, tail) if m]
    if said:
        return run.session_limit_s or float(said[-1].group(1))
    if run.session_limit_s and run.pushed_at and now - run.pushed_at >= run.session_limit_s:
        return run.session_limit_s
    return None


def cause(run: Run, limit_s: float) -> str:
    """One line: the limit, and for a packed run the pack it ran in."""
    where = f" in pack {run.host}" if run.host else ""
    return f"{TIMED_OUT} ({span(limit_s)}){where}, with no outputs"


def span(seconds: float) -> str:
    """8.9 h, 45 min, 3 s."""
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def log_of(project: Project, run: Run, logs: dict) -> str:
    """The run's version's log, read once into `logs` (keyed by kernel version) however many runs it trains."""
    key = (run.kernel, run.version)
    if key not in logs:
        logs[key] = read_log(project, run)
    return logs[key]


def read_log(project: Project, run: Run) -> str:
    """The version's log; "" when it cannot be read (the run time alone then decides)."""
    try:
        return project.backend.logs(run.kernel, run.version)
    except (ToolkitError, OSError, ValueError):
        return ""


def timeout_note(runs: list[Run]) -> str:
    """The line naming the runs that ran past the session limit, and what to change ("" when none did)."""
    from toolkit.runs.lookup import listed

    slow = [run.slug for run in runs if timed_out(run) and not run.aside]
    return f"{listed(slow)} ran past the session limit (a session stopped there keeps no outputs): {ADVICE}" \
        if slow else ""
