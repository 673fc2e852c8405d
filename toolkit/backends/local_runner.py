"""The child process that executes one local kernel: `python -m toolkit.backends.local_runner RUN_DIR TIMEOUT PROJECT`.

It runs the pushed notebook with nbclient in `working/`, streams each cell's output to
`log.txt`, keeps the executed notebook, records COMPLETE or ERROR, then starts the next
queued kernel.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from ..config import load_config
from .base import Status
from .local import LocalBackend, finish


def _log_outputs(log, cell, index: int) -> None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            text = output.get("text", "")
        elif output.get("output_type") == "error":
            text = f"{output.get('ename')}: {output.get('evalue')}\n"
        elif "text/plain" in output.get("data", {}):
            text = output["data"]["text/plain"] + "\n"
        else:
            continue
        log.write(text)
    log.flush()


def run(run_dir: Path, timeout_s: int) -> tuple[Status, str]:
    state = json.loads((run_dir / "state.json").read_text())
    notebook = nbformat.read(run_dir / "kernel" / state["code_file"], as_version=4)
    working = run_dir / "working"
    with open(run_dir / "log.txt", "a") as log:
        client = NotebookClient(notebook, timeout=timeout_s, kernel_name="python3",
                                resources={"metadata": {"path": str(working)}})
        client.on_cell_executed = lambda cell, cell_index, execute_reply: _log_outputs(log, cell, cell_index)
        try:
            client.execute()
            status, message = Status.COMPLETE, ""
        except CellExecutionError as exc:
            status, message = Status.ERROR, _failure(notebook, exc)
            log.write(f"\n{message}\n")
        except (CellTimeoutError, DeadKernelError) as exc:
            status, message = Status.ERROR, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
            log.write(f"\n{message}\n")
        finally:
            nbformat.write(notebook, run_dir / "executed.ipynb")
    return status, message


def _failure(notebook, exc: CellExecutionError) -> str:
    """'cell N: ErrorName: message', as the failing cell reported it."""
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"cell {index}: {output.get('ename')}: {output.get('evalue')}"[:1000]
    return f"{exc.ename}: {exc.evalue}"[:1000]


def main(argv: list[str]) -> int:
    run_dir, timeout_s, project = Path(argv[0]), int(argv[1]), Path(argv[2])
    try:
        status, message = run(run_dir, timeout_s)
    except Exception as exc:  # the runner itself failed: the kernel must still end in ERROR
        traceback.print_exc()
        status, message = Status.ERROR, f"local runner failed: {type(exc).__name__}: {exc}"[:1000]
    finish(run_dir, status, message)
    time.sleep(0.1)
    LocalBackend(load_config(project)).dispatch()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
