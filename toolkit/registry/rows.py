"""Rows read as records: a run with the push claim on it, its spec as its type; a submission."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from typing import Any

from toolkit.core.status import Status, SubmissionStatus
from toolkit.registry.records import Run, Submission, spec_of

# A run as the toolkit sees it: its row and the push claim on it, if any.
RUN_ROWS = ("SELECT runs.*, COALESCE(claims.owner, '') AS claim_owner, claims.claimed_at AS claimed_at,"
            " claims.push_since AS push_since FROM runs LEFT JOIN claims ON claims.run_id = runs.id")


def record_of(kind: type, status: type, row: sqlite3.Row) -> Any:
    """A row as its record: the `*_json` columns decoded (`spec_json` becomes `spec`), status as its enum."""
    data = {key.removesuffix("_json"): json.loads(value) if key.endswith("_json") else value
            for key, value in dict(row).items()}
    data["status"] = status(data["status"])
    return kind(**data)


def run_of(row: sqlite3.Row) -> Run:
    run = record_of(Run, Status, row)
    return replace(run, spec=spec_of(run.kind, {"competition": run.competition, **run.spec}))


def submission_of(row: sqlite3.Row) -> Submission:
    return record_of(Submission, SubmissionStatus, row)


def run_in(db: sqlite3.Connection, run_id: int) -> Run:
    return run_of(db.execute(f"{RUN_ROWS} WHERE runs.id = ?", (run_id,)).fetchone())
