"""The registry's records as the rest of the toolkit sees them: a run, a submission, a push claim."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from .backends.base import Status


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
    claim_owner: str = ""
    claimed_at: float | None = None
    push_since: float | None = None  # when the first unfinished push attempt began (kept across re-claims)
    host: str = ""  # the pack kernel that trains this run beside others ('' = a kernel of its own)

    @property
    def kernel(self) -> str:
        """The slug of the kernel that runs this run."""
        return self.host or self.slug

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Run":
        data = dict(row)
        data["spec"] = json.loads(data.pop("spec_json"))
        data["metrics"] = json.loads(data.pop("metrics_json"))
        data["status"] = Status(data["status"])
        return cls(**data)


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
    status: str
    score: float | None
    error: str
    created_at: float
    updated_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Submission":
        data = dict(row)
        data["members"] = json.loads(data.pop("members_json"))
        data["weights"] = json.loads(data.pop("weights_json"))
        return cls(**data)


@dataclass(frozen=True)
class Claim:
    run: Run
    owner: str
    claimed_at: float
    previous_at: float | None  # when an earlier, abandoned claim began: a push may have reached the backend
