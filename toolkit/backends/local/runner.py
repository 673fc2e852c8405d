"""The child process that executes one local kernel: `python -m toolkit.backends.local.runner RUN_DIR TIMEOUT PROJECT`.

It runs the sandbox's notebook with nbclient in `working/`, in a Python environment of the session's own with
Kaggle's packages (session.py), streams each cell's output to `log.txt`, keeps the executed notebook, records
COMPLETE or ERROR in the queue (or, past the session limit, what Kaggle reports: limits.py), removes the session's
environment, then starts the next queued sandbox.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from toolkit.backends.local import paths, session
from toolkit.backends.local.limits import TIMED_OUT, timeout_line
from toolkit.backends.local.queue import KERNEL_PID, dispatch, finish
from toolkit.backends.local.sandbox import KAGGLE_IMAGE
from toolkit.core.config import load_config
from toolkit.core.status import Status
from toolkit.kernel.runtime.failures import ANSI, cause, cell_label


class LoggingClient(NotebookClient):
    """nbclient's client, writing what the kernel prints to log.txt as it arrives, as Kaggle's log shows a
    running session's lines: a cell that trains for an hour shows each epoch's line when it is printed."""

    log_file = None  # the open log.txt (not `log`: that is the client's logger)

    def output(self, outs, msg, display_id, cell_index):
        if msg["msg_type"] == "stream" and self.log_file is not None:
            self.log_file.write(msg["content"].get("text", ""))
            self.log_file.flush()
        return super().output(outs, msg, display_id, cell_index)


def _log_outputs(log, cell, index: int) -> None:
    """What a finished cell left besides its printed lines (already in the log): its error or result."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            continue
        if output.get("output_type") == "error":  # the whole traceback, readable: it ends at the cause
            lines = output.get("traceback") or [f"{output.get('ename')}: {output.get('evalue')}"]
            text = ANSI.sub("", "\n".join(lines)) + "\n"
        elif "text/plain" in output.get("data", {}):
            text = output["data"]["text/plain"] + "\n"
        else:
            continue
        log.write(text)
    log.flush()


class Echo:
    """log.txt, with every line also written to `echo` (a Ray job's log is what its entrypoint prints)."""

    def __init__(self, log, echo):
        self.log, self.echo = log, echo

    def write(self, text: str) -> None:
        self.log.write(text)
        self.echo.write(text)

    def flush(self) -> None:
        self.log.flush()
        self.echo.flush()


def run(run_dir: Path, timeout_s: int, echo=None) -> tuple[Status, str]:
    """Execute the version's notebook. Kaggle ends a session `timeout_s` after it starts, however its time is
    spread over cells, so each cell may run only for what is left of that (nbclient's limit is per cell). Such a
    session ends as Kaggle's do: CANCEL_ACKNOWLEDGED, no message, no outputs (`_timed_out`). `echo`: a stream
    that gets every line of the log too."""
    state = json.loads((run_dir / "state.json").read_text())
    notebook = nbformat.read(run_dir / "kernel" / state["code_file"], as_version=4)
    working = run_dir / "working"
    env = {**os.environ, **state.get("kernel_env", {}),
           **session.create(run_dir, session.image_site(paths.root_of(run_dir) / "image", KAGGLE_IMAGE))}
    os.environ["JUPYTER_PATH"] = env["JUPYTER_PATH"]  # where nbclient finds the session's kernel
    deadline = time.monotonic() + timeout_s
    with open(run_dir / "log.txt", "a") as file:
        log = file if echo is None else Echo(file, echo)
        client = LoggingClient(notebook, kernel_name="python3", resources={"metadata": {"path": str(working)}},
                               timeout_func=lambda cell: max(1, math.ceil(deadline - time.monotonic())))
        client.log_file = log
        client.on_cell_executed = lambda cell, cell_index, execute_reply: _log_outputs(log, cell, cell_index)
        client.on_notebook_start = lambda notebook: _record_kernel_pid(client, run_dir)
        try:
            # Only the kernel sees Kaggle's package set and read-only inputs, not this runner (it is the toolkit).
            client.execute(env=env)
            status, message = Status.COMPLETE, ""
        except CellExecutionError as exc:
            status, message = Status.ERROR, _failure(notebook, exc)
            log.write(f"\n{message}\n")
        except CellTimeoutError:
            status, message = _timed_out(run_dir, working, log, timeout_s)
        except DeadKernelError as exc:
            status, message = Status.ERROR, cause(f"{type(exc).__name__}: {str(exc).strip()}")
            log.write(f"\n{message}\n")
        finally:
            nbformat.write(notebook, run_dir / "executed.ipynb")
            session.remove(run_dir)
    return status, message


def _timed_out(run_dir: Path, working: Path, log, timeout_s: int) -> tuple[Status, str]:
    """A session past its limit, as Kaggle ends one: its log's last line nbclient's error, its working folder
    not kept (no output files), CANCEL_ACKNOWLEDGED with no failure message (limits.py says where from)."""
    log.write(f"\n{timeout_line(timeout_s)}\n")
    _end_kernel_group(run_dir)
    for entry in working.iterdir():  # emptied, not removed: it is this process's working directory
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    return Status.CANCEL_ACKNOWLEDGED, ""


def _end_kernel_group(run_dir: Path) -> None:
    """What the kernel started (a pack's runs, DataLoader workers) ends with the session, as on Kaggle: the
    kernel's process group (it leads one: queue.stop_processes), which outlives the kernel nbclient shut down."""
    try:
        os.killpg(int((run_dir / KERNEL_PID).read_text()), signal.SIGKILL)
    except (OSError, ValueError):  # none left, or no pid recorded
        pass


def _failure(notebook, exc: CellExecutionError) -> str:
    """'In [N]: ErrorName: message' in one line (the cell as Jupyter numbers it), naming the real cause: an error
    re-raised from a DataLoader worker carries the worker's traceback, whose last line is what went wrong."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"{cell_label(cell)}: " + cause(f"{output.get('ename')}: {output.get('evalue')}")
    return cause(f"{exc.ename}: {exc.evalue}")


def _record_kernel_pid(client: NotebookClient, run_dir: Path) -> None:
    try:
        (run_dir / KERNEL_PID).write_text(str(client.km.provisioner.process.pid))
    except (AttributeError, OSError):  # another provisioner: queue.stop then reaches only the runner
        pass


def main(argv: list[str]) -> int:
    run_dir, timeout_s, project = Path(argv[0]), int(argv[1]), Path(argv[2])
    try:
        status, message = run(run_dir, timeout_s)
    except Exception as exc:  # the runner itself failed: the kernel must still end in ERROR
        traceback.print_exc()
        status, message = Status.ERROR, f"local runner failed: {type(exc).__name__}: {exc}"[:1000]
    finish(run_dir, status, message, **({TIMED_OUT: True} if status == Status.CANCEL_ACKNOWLEDGED else {}))
    time.sleep(0.1)
    dispatch(load_config(project))  # its slot is free: start the next queued sandbox
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
