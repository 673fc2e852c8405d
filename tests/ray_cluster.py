"""A real Ray cluster on this machine for the ray backend's tests: a head node and a second node joined to it,
each with one logical GPU (Ray schedules them as GPUs; no driver is needed), token authentication on, every port
free, temporary files in a folder of their own. `ray stop --force` ends it whatever happens (it stops every Ray
process of this machine: the tests start no other)."""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = Path(sys.executable).parent / "ray"
NODES = ({"gpus": 1, "cpus": 2}, {"gpus": 1, "cpus": 2})  # head, then a worker: two GPUs, two nodes
PORT_FLAGS = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
              "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port")


@dataclass
class RayCluster:
    address: str  # the job server, as RAY_ADDRESS names it
    token_file: Path
    temp: Path
    env: dict[str, str] = field(default_factory=dict)  # what a client of it needs

    def client(self):
        from ray.job_submission import JobSubmissionClient

        return JobSubmissionClient(self.address, headers={"authorization": f"Bearer {self.token_file.read_text()}"})

    def jobs(self, prefix: str = "") -> list:
        """The cluster's jobs whose id starts with `prefix`, oldest first."""
        found = [j for j in self.client().list_jobs() if (j.submission_id or "").startswith(prefix)]
        return sorted(found, key=lambda j: j.start_time or 0)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def worker_ports(count: int) -> int:
    """The first of `count` free ports in a row, under the kernel's ephemeral range (where free_ports picks)."""
    for _ in range(50):
        base = secrets.randbelow(12000 - count) + 20000
        try:
            held = [socket.create_server(("127.0.0.1", port)) for port in range(base, base + count)]
        except OSError:
            continue
        for s in held:
            s.close()
        return base
    raise RuntimeError("no 200 free ports in a row between 20000 and 32000")


def _node_flags(ports: list[int], workers: tuple[int, int]) -> list[str]:
    flags = [f"{flag}={port}" for flag, port in zip(PORT_FLAGS, ports)]
    return [*flags, f"--min-worker-port={workers[0]}", f"--max-worker-port={workers[1]}"]


def _ray(*args: str, env: dict[str, str]) -> None:
    done = subprocess.run([str(RAY), *args], env=env, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"ray {' '.join(args[:2])} failed: {done.stderr[-2000:]}")


def start() -> RayCluster:
    """`ray start --head` and a second node joined to it, on free ports, token authentication on."""
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    token = temp / "token"
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        return _start_nodes(temp, env)
    except BaseException:
        stop()
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _start_nodes(temp: Path, env: dict[str, str]) -> RayCluster:
    gcs, dashboard, client, *ports = free_ports(3 + 2 * len(PORT_FLAGS))
    base = worker_ports(200)  # two blocks of 100, below the range the ports above come from
    head, worker = NODES
    _ray("start", "--head", f"--port={gcs}", f"--dashboard-port={dashboard}", "--dashboard-host=127.0.0.1",
         f"--ray-client-server-port={client}", f"--num-cpus={head['cpus']}", f"--num-gpus={head['gpus']}",
         f"--temp-dir={temp}", "--disable-usage-stats", *_node_flags(ports[:6], (base, base + 99)), env=env)
    _ray("start", f"--address=127.0.0.1:{gcs}", f"--num-cpus={worker['cpus']}", f"--num-gpus={worker['gpus']}",
         "--disable-usage-stats", *_node_flags(ports[6:], (base + 100, base + 199)), env=env)
    token = temp / "token"
    cluster = RayCluster(f"http://127.0.0.1:{dashboard}", token, temp,
                         {"RAY_ADDRESS": f"http://127.0.0.1:{dashboard}", "RAY_AUTH_TOKEN_PATH": str(token)})
    _wait_for_nodes(cluster, len(NODES))
    return cluster


def _wait_for_nodes(cluster: RayCluster, count: int, timeout: float = 60) -> None:
    from ray.util.state.api import StateApiClient
    from ray.util.state.common import ListApiOptions, StateResource

    headers = {"Content-Type": "application/json", "authorization": f"Bearer {cluster.token_file.read_text()}"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = StateApiClient(address=cluster.address, headers=headers).list(
            StateResource.NODES, options=ListApiOptions(filters=[("state", "=", "ALIVE")]),
            raise_on_missing_output=False)
        if len(nodes) >= count:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the Ray cluster at {cluster.address} has not got {count} nodes after {timeout} s")


def stop() -> None:
    """Every Ray process of this machine, killed."""
    subprocess.run([str(RAY), "stop", "--force"], capture_output=True, timeout=120)


def stop_on_exit() -> None:
    """Also when the test process ends without its fixtures' teardown (SIGTERM, an exit from a test)."""
    atexit.register(stop)
    previous = signal.getsignal(signal.SIGTERM)

    def terminated(signum, frame):
        stop()
        if callable(previous):
            previous(signum, frame)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminated)
