"""The registry's records: a run, a submission, an uploaded dataset, a push claim, and which status may follow
which. Plain values: storing them is store.py's job, producing them the backends'."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from toolkit.core.status import Status, SubmissionStatus
from toolkit.specs.ensemble import FIELDS as ENSEMBLE_FIELDS
from toolkit.specs.ensemble import EnsembleSpec
from toolkit.specs.spec import RunSpec

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


@dataclass(frozen=True)
class Run:
    id: int
    slug: str
    kind: str
    backend: str
    competition: str
    spec_hash: str
    spec: RunSpec | EnsembleSpec  # a training run's, or an ensemble kernel's
    status: Status
    version: int | None
    url: str
    failure_message: str
    output_dir: str  # relative to the project ('' until its outputs are downloaded)
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
    not_before: float | None = None  # a waiting run held for a later week's GPU quota is not pushed before this
    set_aside_at: float | None = None  # when the user set it aside (kpush aside); None: it counts
    session_limit_s: float | None = None  # the session limit its version was pushed with (None: not known)

    @property
    def held(self) -> bool:
        """Waiting for a later week's quota, not for a slot."""
        return self.status == Status.NEW and self.not_before is not None and self.not_before > time.time()

    @property
    def aside(self) -> bool:
        """Set aside by the user: listed on request, never waited for, counted or ensembled."""
        return self.set_aside_at is not None

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
class DatasetUpload:
    """Content uploaded to a backend's dataset `ref` (owner/slug); `version` once the backend has processed it."""

    id: int
    backend: str
    ref: str
    content_hash: str
    files: int
    bytes: int
    version: int | None
    uploaded_at: float
    ready_at: float | None


@dataclass(frozen=True)
class Claim:
    """The right to push a NEW run, held by one command (`owner`: host:pid) at a time."""

    run: Run
    owner: str
    claimed_at: float
    previous_at: float | None  # when an earlier, abandoned claim began: a push may have reached the backend


def spec_of(kind: str, values: dict[str, Any]) -> RunSpec | EnsembleSpec:
    """A stored spec as its type: an ensemble kernel's, or a training run's."""
    if kind == "ensemble":
        return EnsembleSpec(**{k: v for k, v in values.items() if k in ENSEMBLE_FIELDS})
    return RunSpec.from_record(values)
