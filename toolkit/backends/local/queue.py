"""The queue of local sandboxes: each one's state.json, the one lock, starting queued sandboxes as slots
free (at most `concurrency` at once, oldest first), stopping them, and recording how they ended.

state.json holds status (QUEUED, RUNNING, then an end), queued_at, pid, started_at, finished_at,
failure_message, and what laying out the sandbox put there (code_file, inputs, kernel_env, ...).
Each sandbox runs in a detached runner process (runner.py), so it outlives the command that queued it.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from toolkit.backends.local import paths, session
from toolkit.core.config import Config
from toolkit.core.procs import pid_alive
from toolkit.core.status import Status

CREDENTIAL_VARS = ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR")
KERNEL_PID = "kernel.pid"  # the notebook kernel runs in a session of its own; stop() needs its group too
DIED = "the kernel's process ended without reporting a result"


def read_state(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "state.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def write_state(run_dir: Path, state: dict) -> None:
    atomic_write(run_dir / "state.json", json.dumps(state, indent=2))


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """One lock for every state change on this backend (push, start, finish, stop, submit)."""
    with open(root / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def current_state(config: Config, run_dir: Path) -> dict:
    """The sandbox's state, dispatching first while it has not ended (so a runner that died reads ERROR)."""
    state = read_state(run_dir)
    if state.get("status") in (Status.QUEUED.value, Status.RUNNING.value):
        dispatch(config)
        state = read_state(run_dir)
    return state


def dispatch(config: Config) -> None:
    """Mark dead runners as failed and start queued sandboxes, oldest first, up to the limit."""
    root = paths.root(config)
    with locked(root):
        states = [(d, read_state(d)) for d in paths.sandboxes(root) if (d / "state.json").exists()]
        running = sum(_still_running(d, s) for d, s in states if s.get("status") == Status.RUNNING.value)
        queued = sorted((s.get("queued_at", 0), str(d)) for d, s in states if s.get("status") == "QUEUED")
        for _, run_dir in queued[: max(0, config.concurrency - running)]:
            start(Path(run_dir), config)


def _still_running(run_dir: Path, state: dict) -> bool:
    """Whether a RUNNING sandbox's runner is alive; one that is not is recorded as failed."""
    if pid_alive(state.get("pid")):
        return True
    state.update(status=Status.ERROR.value, finished_at=time.time(), failure_message=DIED)
    write_state(run_dir, state)
    return False


def runner_env(environ: dict[str, str], hidden: tuple[str, ...] = CREDENTIAL_VARS) -> dict[str, str]:
    """What a runner starts with: `environ` without credentials, and what Kaggle sets in a batch session."""
    env = {k: v for k, v in environ.items() if k not in hidden}
    env.update(KAGGLE_KERNEL_RUN_TYPE="Batch", MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    return env


def start(run_dir: Path, config: Config) -> None:
    """Start the sandbox's runner, detached and without Kaggle credentials (the caller holds the lock)."""
    env = runner_env(os.environ)
    timeout_s = read_state(run_dir).get("session_timeout_s") or config.session_timeout_s
    with open(run_dir / "runner.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "toolkit.backends.local.runner", str(run_dir), str(timeout_s),
             str(config.state_dir.parent)],
            cwd=run_dir / "working", env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True)
    state = read_state(run_dir)
    state.update(status=Status.RUNNING.value, pid=process.pid, started_at=time.time())
    write_state(run_dir, state)


def stop(config: Config, run_dir: Path) -> dict:
    """Stop a queued or running sandbox: kill its processes, record it as stopped by the user, and start
    the next queued one. One that already ended is left as it is. Returns its state."""
    with locked(paths.root_of(run_dir)):  # the runner records its end under this lock too: one of the two wins
        state = read_state(run_dir)
        if Status(state.get("status", Status.ERROR.value)).terminal:
            return state
        stop_processes(run_dir, state.get("pid"))
        session.remove(run_dir)  # the session's own environment goes with it, as when it ends
        state.update(status=Status.CANCEL_ACKNOWLEDGED.value, failure_message="stopped by the user",
                     finished_at=time.time())
        write_state(run_dir, state)
    dispatch(config)
    return state


def stop_processes(run_dir: Path, runner_pid: object) -> None:
    """Kill the runner's process group and the notebook kernel's (with anything the kernel started:
    a pack's runs, DataLoader workers). Each is its own session leader, so pid == process group id."""
    pids = [runner_pid]
    try:
        pids.append(int((run_dir / KERNEL_PID).read_text()))
    except (OSError, ValueError):
        pass
    for pid in pids:
        if not isinstance(pid, int) or pid <= 1:
            continue
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def finish(run_dir: Path, status: Status, failure_message: str = "", **marks: object) -> None:
    """Called by the runner process when its kernel ends; `marks` are recorded too (limits.TIMED_OUT). An end
    recorded first (a stop that reached the state before the runner's end, as a Ray job's can) is kept."""
    with locked(paths.root_of(run_dir)):
        state = read_state(run_dir)
        if Status(state.get("status", Status.RUNNING.value)).terminal:
            return
        state.update(status=status.value, failure_message=failure_message, finished_at=time.time(), **marks)
        write_state(run_dir, state)
