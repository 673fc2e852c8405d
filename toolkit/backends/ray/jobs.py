"""A version as a Ray job, in plain values: what it asks the cluster for (GPUs it trains on, CPUs to match),
whether any node can give that, its id and entrypoint, and what a job that ended without the runner's result
means (lost to the cluster, or failed before the kernel started)."""

from __future__ import annotations

import math
import secrets
import shlex
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from toolkit.backends.ray.cluster import Job, Node
from toolkit.core.errors import BackendError
from toolkit.core.status import Status

ENTRYPOINT = "toolkit.backends.ray.entrypoint"
# Job ends that are the cluster's doing whatever the runner did: its supervisor (and with it the node) died.
LOST_TYPES = ("JOB_SUPERVISOR_ACTOR_DIED", "JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE")
RAY_TAIL = ", last available logs"  # where Ray's end message starts quoting the log


@dataclass(frozen=True)
class Ask:
    gpus: int
    cpus: float

    def __str__(self) -> str:
        return f"{_count(self.gpus, 'GPU')} and {_count(self.cpus, 'CPU')}"


def ask(meta: dict, notebook: dict, cpus_per_gpu: float) -> Ask:
    """A GPU kernel trains on one GPU, a pack on one per run (its notebook says how many); a CPU kernel (the
    ensemble) on none. CPUs: cpus_per_gpu for each GPU, and as many for a CPU kernel."""
    gpus = 0
    if meta.get("enable_gpu") in (True, "true", "True"):
        gpus = int(notebook.get("metadata", {}).get("toolkit", {}).get("gpus", 1))
    return Ask(gpus, cpus_per_gpu * max(1, gpus))


def fits(asked: Ask, nodes: list[Node]) -> bool:
    """Whether one node has what the job asks for (a job's entrypoint runs on one node)."""
    return any(n.gpus >= asked.gpus and n.cpus >= asked.cpus for n in nodes)


def refusal(slug: str, asked: Ask, nodes: list[Node], address: str) -> BackendError:
    """The one line for a request no node can meet, which Ray would queue forever."""
    kinds = Counter(f"{_count(n.gpus, 'GPU')} and {_count(n.cpus, 'CPU')}" for n in nodes)
    have = "; ".join(f"{k}" if n == 1 else f"{n} nodes of {k}" for k, n in kinds.items()) or "no node alive"
    return BackendError(f"{slug} asks for {asked} on one node, and no node of the Ray cluster at {address} has "
                        f"them (its nodes: {have})", "train fewer runs per kernel (--pack), lower [ray] "
                        "cpus_per_gpu, or add a node that has them ([ray] autoscaling = true where nodes start "
                        "on demand); kstop drops the waiting run")


def _count(number: float, unit: str) -> str:
    shown = f"{number:g}"
    return f"{shown} {unit}" + ("" if math.isclose(number, 1) else "s")


def new_job_id(slug: str, version: int) -> str:
    """Unique on the cluster for good: a project's versions restart at 1 when its shared folder is new."""
    return f"{slug}-v{version}-{secrets.token_hex(4)}"


def entrypoint(python: str, run_dir: Path, timeout_s: int) -> str:
    return shlex.join([python, "-m", ENTRYPOINT, str(run_dir), str(int(timeout_s))])


def why(job: Job) -> str:
    """Ray's reason for a job's end, in one short line."""
    if not job.status:
        return "the cluster no longer knows its job (restarted?)"
    first = (job.message.splitlines() or [job.status])[0]
    return first.split(RAY_TAIL)[0].rstrip(".")[:200] or job.status


def lost(state: dict, job: Job) -> bool:
    """A job that ended without the runner's result was lost to the cluster when its runner had started (the
    driver was killed, its node died, the cluster restarted), or when Ray says its supervisor died; otherwise
    it failed before the kernel could start (no toolkit on the node, say)."""
    return bool(state.get("pid")) or job.error_type in LOST_TYPES


def ending(state: dict, job: Job, why: str) -> tuple[Status, str] | None:
    """How a version whose job ended without the runner's result ends; None when it is to be resubmitted (lost
    for the first time)."""
    if job.status == "STOPPED":
        return Status.CANCEL_ACKNOWLEDGED, f"stopped on the cluster ({why})"
    if not lost(state, job):
        return Status.ERROR, (f"the Ray job failed before the kernel started: {why} (is the toolkit installed at "
                              "[ray] python on every node?)")
    if state.get("resubmission_of"):
        return Status.ERROR, f"lost to the cluster again ({why}); resubmitted once already"
    return None
