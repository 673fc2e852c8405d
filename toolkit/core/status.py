"""The status vocabulary every part shares: how a kernel version stands (Kaggle's KernelWorkerStatus names,
plus NEW) and how a submission stands. Backends report in it; the registry stores it."""

from __future__ import annotations

import enum


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


class SubmissionStatus(enum.StrEnum):
    """A submission's state, in Kaggle's SubmissionStatus names. A StrEnum, so that it is stored, written
    to JSON and printed as the bare name."""

    PENDING = "PENDING"
    COMPLETE = "COMPLETE"
    ERROR = "ERROR"
