"""SQLite registry of runs and submissions (WAL; every state change is one short transaction)."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .backends.base import Status
from .errors import RunNotFound, StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('train', 'ensemble')),
    backend TEXT NOT NULL,
    competition TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER,
    url TEXT NOT NULL DEFAULT '',
    failure_message TEXT NOT NULL DEFAULT '',
    output_dir TEXT NOT NULL DEFAULT '',
    metrics_json TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    pushed_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS runs_slug ON runs (slug, backend);
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY,
    backend TEXT NOT NULL,
    competition TEXT NOT NULL,
    ensemble_run_id INTEGER REFERENCES runs (id),
    members_json TEXT NOT NULL,
    weights_json TEXT NOT NULL,
    file TEXT NOT NULL DEFAULT '',
    ref TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'PENDING',
    score REAL,
    error TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""

# Which status may follow which. A terminal run goes back to NEW only through requeue().
ALLOWED = {
    Status.NEW: {Status.QUEUED, Status.RUNNING, Status.COMPLETE, Status.ERROR},
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


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        try:
            db.executescript(SCHEMA)  # idempotent; executescript manages its own transaction
        finally:
            db.close()

    def _connect(self) -> sqlite3.Connection:
        # A long busy timeout instead of "database is locked" when two commands run at once.
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA busy_timeout=60000")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def _query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        db = self._connect()
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    # -- runs ---------------------------------------------------------------------------------

    def add_run(self, slug: str, kind: str, backend: str, competition: str, spec_hash: str,
                spec: dict[str, Any]) -> Run:
        now = time.time()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (slug, kind, backend, competition, spec_hash, spec_json, status, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (slug, kind, backend, competition, spec_hash, json.dumps(spec, sort_keys=True), Status.NEW.value,
                 now, now))
            run_id = cursor.lastrowid
        return self.get(run_id)

    def get(self, run_id: int) -> Run:
        rows = self._query("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise RunNotFound(f"no run with id {run_id}", "kstatus lists the runs")
        return Run.from_row(rows[0])

    def runs(self, *, backend: str | None = None, competition: str | None = None, kind: str | None = None,
             slug: str | None = None) -> list[Run]:
        clauses, params = [], []
        for column, value in (("backend", backend), ("competition", competition), ("kind", kind), ("slug", slug)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return [Run.from_row(r) for r in self._query(f"SELECT * FROM runs {where} ORDER BY id", tuple(params))]

    def latest(self, slug: str, backend: str) -> Run | None:
        found = self.runs(slug=slug, backend=backend)
        return found[-1] if found else None

    def set_status(self, run_id: int, status: Status, failure_message: str | None = None,
                   version: int | None = None, url: str | None = None) -> Run:
        """Move a run to `status` (checked against ALLOWED) in one transaction."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute("SELECT status, version FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(f"no run with id {run_id}")
            current = Status(row["status"])
            if status not in ALLOWED[current]:
                raise StoreError(f"run {run_id} cannot go from {current.value} to {status.value}")
            db.execute(
                "UPDATE runs SET status = ?, failure_message = COALESCE(?, failure_message),"
                " version = COALESCE(?, version), url = COALESCE(?, url), updated_at = ?,"
                " pushed_at = CASE WHEN ? IS NOT NULL THEN ? ELSE pushed_at END,"
                " finished_at = CASE WHEN ? THEN ? ELSE finished_at END WHERE id = ?",
                (status.value, failure_message, version, url, now, version, now, status.terminal, now, run_id))
        return self.get(run_id)

    def requeue(self, run_id: int) -> Run:
        """Back to NEW for a retry or a forced new version; the old version's outputs are kept on disk."""
        now = time.time()
        with self._transaction() as db:
            db.execute("UPDATE runs SET status = ?, failure_message = '', output_dir = '', metrics_json = '{}',"
                       " updated_at = ?, finished_at = NULL WHERE id = ?", (Status.NEW.value, now, run_id))
        return self.get(run_id)

    def set_outputs(self, run_id: int, output_dir: Path, metrics: dict[str, Any]) -> Run:
        with self._transaction() as db:
            db.execute("UPDATE runs SET output_dir = ?, metrics_json = ?, updated_at = ? WHERE id = ?",
                       (str(output_dir), json.dumps(metrics), time.time(), run_id))
        return self.get(run_id)

    # -- submissions --------------------------------------------------------------------------

    def add_submission(self, backend: str, competition: str, ensemble_run_id: int | None, members: list[str],
                       weights: list[float]) -> Submission:
        now = time.time()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO submissions (backend, competition, ensemble_run_id, members_json, weights_json,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (backend, competition, ensemble_run_id, json.dumps(members), json.dumps(weights), now, now))
            sub_id = cursor.lastrowid
        return self.submission(sub_id)

    def update_submission(self, sub_id: int, **fields: Any) -> Submission:
        allowed = {"file", "ref", "status", "score", "error"}
        unknown = set(fields) - allowed
        if unknown:
            raise StoreError(f"cannot set {', '.join(sorted(unknown))} on a submission")
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._transaction() as db:
            db.execute(f"UPDATE submissions SET {assignments}, updated_at = ? WHERE id = ?",
                       (*fields.values(), time.time(), sub_id))
        return self.submission(sub_id)

    def submission(self, sub_id: int) -> Submission:
        rows = self._query("SELECT * FROM submissions WHERE id = ?", (sub_id,))
        if not rows:
            raise RunNotFound(f"no submission with id {sub_id}")
        return Submission.from_row(rows[0])

    def submissions(self, competition: str | None = None) -> list[Submission]:
        if competition is None:
            rows = self._query("SELECT * FROM submissions ORDER BY id")
        else:
            rows = self._query("SELECT * FROM submissions WHERE competition = ? ORDER BY id", (competition,))
        return [Submission.from_row(r) for r in rows]
