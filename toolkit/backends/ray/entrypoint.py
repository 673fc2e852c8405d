"""A Ray job's entrypoint, on the node Ray placed it: `python -m toolkit.backends.ray.entrypoint RUN_DIR TIMEOUT`.

It is the local runner (local/runner.py) on the version's sandbox in the shared folder: the notebook with
nbclient, in Kaggle's layout and package set, in a session environment of its own; each line of its log is also
printed, which makes the job's log; its end goes to state.json. Ray's queue starts it, so unlike the local
runner it starts nothing after. Stopped (SIGTERM, from `ray job stop` or kstop), it takes the notebook's kernel
down with it: that runs in a process group of its own, which Ray's stop does not reach.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import traceback
from pathlib import Path

from toolkit.backends.local import paths, runner, session
from toolkit.backends.local.queue import (CREDENTIAL_VARS, finish, locked, read_state, runner_env, stop_processes,
                                          write_state)
from toolkit.core.status import Status

# Besides Kaggle's: the cluster's token, which Ray hands every job.
HIDDEN = (*CREDENTIAL_VARS, "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def started(run_dir: Path) -> bool:
    """Record that the runner has started here (a job lost after this is the cluster's loss); False when the
    version was stopped before its job started."""
    with locked(paths.root_of(run_dir)):
        state = read_state(run_dir)
        if Status(state.get("status", Status.QUEUED.value)).terminal:
            return False
        state.update(status=Status.RUNNING.value, pid=os.getpid(), host=socket.gethostname(), started_at=time.time())
        write_state(run_dir, state)
    return True


def environment(state: dict) -> dict[str, str]:
    """The runner's environment: no credentials; a CPU kernel sees no GPU, as on Kaggle (Ray hides GPUs only
    from jobs that ask for some)."""
    env = runner_env(dict(os.environ), HIDDEN)
    if not state.get("ray_ask", {}).get("gpus"):
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def on_stop(run_dir: Path):
    def stop(signum, frame) -> None:
        stop_processes(run_dir, None)  # the notebook's kernel and what it started
        session.remove(run_dir)
        os._exit(128 + signum)
    return stop


def main(argv: list[str]) -> int:
    run_dir, timeout_s = Path(argv[0]).resolve(), int(argv[1])
    env = environment(read_state(run_dir))
    os.environ.clear()
    os.environ.update(env)
    os.chdir(run_dir / "working")
    with open(run_dir / "runner.log", "ab") as log:  # as the local runner's: the job's log is the kernel's
        os.dup2(log.fileno(), sys.stderr.fileno())
    signal.signal(signal.SIGTERM, on_stop(run_dir))
    if not started(run_dir):
        return 0
    try:
        status, message = runner.run(run_dir, timeout_s, echo=sys.stdout)
    except Exception as exc:  # the runner itself failed: the kernel must still end in ERROR
        traceback.print_exc()
        status, message = Status.ERROR, f"ray runner failed: {type(exc).__name__}: {exc}"[:1000]
    finish(run_dir, status, message)
    return 0 if status == Status.COMPLETE else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
