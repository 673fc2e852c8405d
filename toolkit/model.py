"""The data model every part shares: run and submission statuses, which status may follow which, and the
registry's records (a run, a submission, a push claim). Plain values: storing them is store.py's job,
producing them the backends'."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Status(str, enum.Enum):
    """Kaggle's KernelWorkerStatus names, plus NEW for a run rendered but not yet accepted by a backend."""

    NEW = "NEW"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    ERROR = "ERROR"
    CANCEL_REQUESTED = "CANCEL_REQUESTED"
    CANCEL_ACKNOWLEDGED = "CANCEL_ACKNOWLEDGED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def settled(self) -> bool:
        """Nothing more to wait for: ended, or being stopped (a cancel requested from Kaggle's web UI may stay
        CANCEL_REQUESTED for a long time, and such a version writes no outputs)."""
        return self.terminal or self is Status.CANCEL_REQUESTED


TERMINAL = frozenset({Status.COMPLETE, Status.ERROR, Status.CANCEL_ACKNOWLEDGED})

# Which status may follow which. A terminal run goes back to NEW only through Store.requeue().
ALLOWED = {
    Status.NEW: {Status.QUEUED, Status.RUNNING, Status.COMPLETE, Status.ERROR, Status.CANCEL_ACKNOWLEDGED},
    Status.QUEUED: {Status.QUEUED, Status.RUNNING, Status.COMPLETE, Status.ERROR, Status.CANCEL_REQUESTED,
                    Status.CANCEL_ACKNOWLEDGED},
    Status.RUNNING: {Status.RUNNING, Status.COMPLETE, Status.ERROR, Status.CANCEL_REQUESTED,
                     Status.CANCEL_ACKNOWLEDGED},
    Status.CANCEL_REQUESTED: {Status.CANCEL_REQUESTED, Status.CANCEL_ACKNOWLEDGED, Status.COMPLETE, Status.ERROR},
    Status.COMPLETE: {Status.COMPLETE},
    Status.ERROR: {Status.ERROR},
    Status.CANCEL_ACKNOWLEDGED: {Status.CANCEL_ACKNOWLEDGED},
}


class SubmissionStatus(enum.StrEnum):
    """A submission's state, in Kaggle's SubmissionStatus names. A StrEnum, so that it is stored, written
    to JSON and printed as the bare name."""

    PENDING = "PENDING"
    COMPLETE = "COMPLETE"
    ERROR = "ERROR"


@dataclass(frozen=True)
class Run:
    id: int
    slug: str
    kind: str
    backend: str
    competition: str
    spec_hash: str
    spec: dict[str, Any]
    status: Status
    version: int | None
    url: str
    failure_message: str
    output_dir: str
    metrics: dict[str, Any]
    created_at: float
    updated_at: float
    pushed_at: float | None
    finished_at: float | None
    # The push claim on this run right now, if any (see Claim); '' / None when nobody holds one.
    claim_owner: str = ""
    claimed_at: float | None = None
    push_since: float | None = None  # when the first unfinished push attempt began (kept across re-claims)
    host: str = ""  # the pack kernel that trains this run beside others ('' = a kernel of its own)
    # The slug its kernel is pushed under when the rendered one could not be used (an empty kernel that a
    # refused push left on Kaggle blocks it, and could not be deleted); '' = the rendered one.
    kernel_slug: str = ""

    @property
    def kernel(self) -> str:
        """The slug of the kernel that runs this run."""
        return self.kernel_slug or self.host or self.slug


@dataclass(frozen=True)
class Submission:
    id: int
    backend: str
    competition: str
    ensemble_run_id: int | None
    members: list[str]
    weights: list[float]
    file: str
    ref: str
    status: SubmissionStatus
    score: float | None
    error: str
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Claim:
    """The right to push a NEW run, held by one command (`owner`: host:pid) at a time."""

    run: Run
    owner: str
    claimed_at: float
    previous_at: float | None  # when an earlier, abandoned claim began: a push may have reached the backend
