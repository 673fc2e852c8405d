"""SQLite registry of runs, push claims, submissions and uploaded datasets (WAL; every state change is one short
transaction). The tables and their migrations are in schema.py, the records it returns in records.py, read from
rows by rows.py; the datasets table's part of it in uploads.py."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from toolkit.core.errors import RunNotFound, StoreError
from toolkit.core.procs import pid_alive
from toolkit.core.status import Status, SubmissionStatus
from toolkit.registry import schema
from toolkit.registry.damage import Damaged, drop_orphan_journals, file_lock, is_damage, set_aside
from toolkit.registry.records import ALLOWED, Claim, Run, Submission
from toolkit.registry.rows import RUN_ROWS, run_in, run_of, submission_of
from toolkit.registry.uploads import Uploads

# A claim whose owner cannot be checked (another host) is taken over after this long.
CLAIM_STALE_S = 15 * 60.0
def owner_id() -> str:
    """Who holds a claim: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # cannot tell from here: the stale timeout decides
    return pid_alive(int(pid))


def _move(db: sqlite3.Connection, run_id: int, status: Status, failure_message: str | None,
          version: int | None, url: str | None) -> None:
    """One status change inside the caller's transaction, checked against ALLOWED. Recording a version
    means a push landed, so the run's claim has served its purpose."""
    row = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise RunNotFound(f"no run with id {run_id}")
    current = Status(row["status"])
    if status not in ALLOWED[current]:
        raise StoreError(f"run {run_id} cannot go from {current.value} to {status.value}")
    now = time.time()
    db.execute(
        "UPDATE runs SET status = ?, failure_message = COALESCE(?, failure_message),"
        " version = COALESCE(?, version), url = COALESCE(?, url), updated_at = ?,"
        " pushed_at = CASE WHEN ? IS NOT NULL THEN ? ELSE pushed_at END,"
        " finished_at = CASE WHEN ? THEN ? ELSE finished_at END WHERE id = ?",
        (status.value, failure_message, version, url, now, version, now, status.terminal, now, run_id))
    if version is not None:
        db.execute("DELETE FROM claims WHERE run_id = ?", (run_id,))
        _remember_version(db, run_id, version)


# The slug of the kernel a run's row is pushed under (Run.kernel, in SQL).
KERNEL_OF = "CASE WHEN kernel_slug != '' THEN kernel_slug WHEN host != '' THEN host ELSE slug END"


def _remember_version(db: sqlite3.Connection, run_id: int, version: int) -> None:
    db.execute(f"INSERT OR IGNORE INTO kernel_versions (backend, kernel, version) SELECT backend, {KERNEL_OF}, ?"
               " FROM runs WHERE id = ?", (version, run_id))


class Store(Uploads):
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.set_aside: Path | None = None  # where an unreadable registry file was moved, and why
        self.damage = ""
        with file_lock(self.path):  # one command at a time decides whether the file is sound
            drop_orphan_journals(self.path)
            try:
                self._create(Damaged)
            except Exception as exc:
                if not is_damage(exc):
                    raise
                self.damage = str(exc) or type(exc).__name__
                self.set_aside = set_aside(self.path)
                self._create(Damaged)

    def _create(self, damaged: type[Exception]) -> None:
        db = self._connect()
        try:
            problems = [r[0] for r in db.execute("PRAGMA quick_check").fetchall() if r[0] != "ok"]
            if problems:
                raise damaged(problems[0])
            schema.migrate(db, str(self.path))
        finally:
            db.close()

    def _connect(self) -> sqlite3.Connection:
        # A long busy timeout instead of "database is locked" when two commands run at once.
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=60000")
            db.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            db.close()
            raise
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
        """Record a new run. If this slug already has an unfinished run on this backend (another command
        recorded it a moment ago), that run is returned instead, so two commands never make two."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute("SELECT id, status FROM runs WHERE slug = ? AND backend = ? ORDER BY id DESC LIMIT 1",
                             (slug, backend)).fetchone()
            if row is not None and not Status(row["status"]).terminal:
                return run_in(db, row["id"])
            run_id = db.execute(
                "INSERT INTO runs (slug, kind, backend, competition, spec_hash, spec_json, status, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (slug, kind, backend, competition, spec_hash, json.dumps(spec, sort_keys=True), Status.NEW.value,
                 now, now)).lastrowid
        return self.get(run_id)

    def get(self, run_id: int) -> Run:
        rows = self._query(f"{RUN_ROWS} WHERE runs.id = ?", (run_id,))
        if not rows:
            raise RunNotFound(f"no run with id {run_id}", "kstatus lists the runs")
        return run_of(rows[0])

    def runs(self, *, backend: str | None = None, competition: str | None = None, kind: str | None = None,
             slug: str | None = None, aside: bool = False) -> list[Run]:
        """The runs that match, oldest first; those the user set aside only with `aside`."""
        clauses, params = ([] if aside else ["runs.set_aside_at IS NULL"]), []
        for column, value in (("backend", backend), ("competition", competition), ("kind", kind), ("slug", slug)):
            if value is not None:
                clauses.append(f"runs.{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return [run_of(r) for r in self._query(f"{RUN_ROWS} {where} ORDER BY runs.id", tuple(params))]

    def has_runs(self) -> bool:
        return bool(self._query("SELECT 1 FROM runs LIMIT 1"))

    def restore_run(self, slug: str, kind: str, backend: str, competition: str, spec_hash: str,
                    spec: dict[str, Any], state: tuple[Status, str], version: int, url: str, host: str = "",
                    kernel_slug: str = "") -> Run:
        """Record a run the backend already holds (rebuilding a lost registry): inserted, or the slug's
        row updated to this newer version (a packed run later retried in a kernel of its own)."""
        now = time.time()
        status, message = state
        with self._transaction() as db:
            row = db.execute("SELECT id FROM runs WHERE slug = ? AND backend = ?", (slug, backend)).fetchone()
            if row is None:
                row = db.execute(
                    "INSERT INTO runs (slug, kind, backend, competition, spec_hash, spec_json, status, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (slug, kind, backend, competition, spec_hash, json.dumps(spec, sort_keys=True), status.value,
                     now, now)).fetchone()
            # When it was pushed and ended is not known here: left empty rather than made up.
            db.execute("UPDATE runs SET status = ?, version = ?, url = ?, failure_message = ?, host = ?,"
                       " kernel_slug = ?,"
                       " pushed_at = NULL, finished_at = NULL, output_dir = '', metrics_json = '{}', updated_at = ?"
                       " WHERE id = ?", (status.value, version, url, message, host, kernel_slug, now, row["id"]))
            _remember_version(db, row["id"], version)
            return run_in(db, row["id"])

    def known_version(self, kernel: str, backend: str) -> int | None:
        """The newest version of kernel `kernel` this registry ever recorded; None when it recorded none."""
        rows = self._query("SELECT MAX(version) FROM kernel_versions WHERE backend = ? AND kernel = ?",
                           (backend, kernel))
        return rows[0][0]

    def rename_kernel(self, run_ids: list[int], kernel_slug: str) -> None:
        """Push these waiting runs' kernel under `kernel_slug` from now on (their rendered slug is blocked)."""
        with self._transaction() as db:
            for run_id in run_ids:
                db.execute("UPDATE runs SET kernel_slug = ?, updated_at = ? WHERE id = ? AND status = ?",
                           (kernel_slug, time.time(), run_id, Status.NEW.value))

    def latest(self, slug: str, backend: str) -> Run | None:
        return ([None] + self.runs(slug=slug, backend=backend))[-1]

    def set_status(self, run_id: int, status: Status, failure_message: str | None = None,
                   version: int | None = None, url: str | None = None) -> Run:
        """Move a run to `status` (checked against ALLOWED) in one transaction."""
        with self._transaction() as db:
            _move(db, run_id, status, failure_message, version, url)
        return self.get(run_id)

    def record_push(self, run_ids: list[int], version: int, url: str, session_limit_s: float | None = None) -> None:
        """Runs pushed together (one kernel) become QUEUED with its version (and the session limit it was pushed
        with, when known), in one transaction."""
        with self._transaction() as db:
            for run_id in run_ids:
                _move(db, run_id, Status.QUEUED, None, version, url)
                db.execute("UPDATE runs SET session_limit_s = ? WHERE id = ?", (session_limit_s, run_id))

    def refuse_outputs(self, run_id: int, message: str) -> Run:
        """A COMPLETE run whose outputs break the contract becomes ERROR with `message`: the one move out of a
        terminal state, since its kernel did end, but with nothing the toolkit can use."""
        with self._transaction() as db:
            db.execute("UPDATE runs SET status = ?, failure_message = ?, output_dir = '', updated_at = ? WHERE id = ?"
                       " AND status = ?", (Status.ERROR.value, message, time.time(), run_id, Status.COMPLETE.value))
        return self.get(run_id)

    def mark_aside(self, run_ids: list[int], aside: bool = True) -> list[Run]:
        """Set runs aside (or count them again), in one transaction."""
        with self._transaction() as db:
            for run_id in run_ids:
                db.execute("UPDATE runs SET set_aside_at = ?, updated_at = ? WHERE id = ?",
                           (time.time() if aside else None, time.time(), run_id))
        return [self.get(run_id) for run_id in run_ids]

    def set_host(self, run_ids: list[int], host: str) -> None:
        """Mark waiting runs as trained together by the pack kernel `host`."""
        with self._transaction() as db:
            for run_id in run_ids:
                db.execute("UPDATE runs SET host = ?, updated_at = ? WHERE id = ? AND status = ?",
                           (host, time.time(), run_id, Status.NEW.value))

    def hold(self, run_ids: list[int], until: float | None) -> None:
        """Keep waiting runs from being pushed before `until` (a later week's quota); None lets them go."""
        with self._transaction() as db:
            for run_id in run_ids:
                db.execute("UPDATE runs SET not_before = ?, updated_at = ? WHERE id = ? AND status = ?",
                           (until, time.time(), run_id, Status.NEW.value))

    def observe(self, run_id: int, status: Status, failure_message: str = "") -> Run:
        """Record what the backend reported for a pushed run. A reading that arrives after another command
        already recorded a terminal state (two `kpull`s at once) is out of date and is dropped, not an error."""
        try:
            return self.set_status(run_id, status, failure_message)
        except StoreError:
            run = self.get(run_id)
            if run.status.terminal:  # another command recorded the end first
                return run
            raise

    def move_on(self, run_id: int, moved_to: int, url: str, note: str) -> Run:
        """A run whose version the backend lost and resubmitted itself (Ray) goes on as version `moved_to`: QUEUED,
        `note` saying why (the one move back from RUNNING); a run that ended, or moved on already, is left."""
        with self._transaction() as db:
            run = run_in(db, run_id)
            if run.status.terminal or run.status == Status.NEW or (run.version or 0) >= moved_to:
                return run
            now = time.time()
            db.execute("UPDATE runs SET status = ?, failure_message = ?, version = ?, url = ?, updated_at = ?,"
                       " pushed_at = ? WHERE id = ?", (Status.QUEUED.value, note, moved_to, url, now, now, run_id))
            _remember_version(db, run_id, moved_to)
        return self.get(run_id)

    def requeue(self, run_id: int, note: str = "") -> Run:
        """Back to NEW for a retry or a forced new version; the old version's outputs are kept on disk. `note`
        says why, where the toolkit requeued it itself (kept until its new version ends)."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(f"no run with id {run_id}")
            current = Status(row["status"])
            if current == Status.NEW:  # already waiting (another command requeued it): nothing to do
                return run_in(db, run_id)
            if not current.terminal:
                raise StoreError(f"run {run_id} is still {current.value}", "wait for it to finish first")
            # A retry runs in a kernel of its own: a pack's slug (or the one it was pushed under) is left behind.
            db.execute("UPDATE runs SET status = ?, failure_message = ?, output_dir = '', metrics_json = '{}',"
                       " updated_at = ?, finished_at = NULL, not_before = NULL, set_aside_at = NULL,"
                       " kernel_slug = CASE WHEN host = '' THEN kernel_slug ELSE '' END, host = '' WHERE id = ?",
                       (Status.NEW.value, note, now, run_id))
            db.execute("DELETE FROM claims WHERE run_id = ?", (run_id,))
        return self.get(run_id)

    # -- claims: one command acts on a run at a time ----------------------------------------------

    def claim(self, run_id: int, owner: str | None = None, stale_s: float = CLAIM_STALE_S) -> Claim | None:
        """Take the right to push a NEW run, in one transaction. None when the run is no longer NEW or a
        live command holds it. A claim left by a command that died (its process is gone, or it is older
        than `stale_s`) is taken over, and `Claim.previous_at` says since when a push may have been in
        flight, so the caller can ask the backend whether it arrived before pushing again."""
        owner = owner or owner_id()
        now = time.time()
        with self._transaction() as db:
            row = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(f"no run with id {run_id}")
            if Status(row["status"]) != Status.NEW:
                return None
            held = db.execute("SELECT owner, claimed_at, push_since FROM claims WHERE run_id = ?", (run_id,)).fetchone()
            if held and held["owner"] != owner and _owner_alive(held["owner"]) and now - held["claimed_at"] < stale_s:
                return None
            # Any earlier claim may have pushed; the first one's start time stays the reference, so a
            # reconcile that itself fails cannot make the next one look too late.
            db.execute("INSERT INTO claims (run_id, owner, claimed_at, push_since) VALUES (?, ?, ?, ?)"
                       " ON CONFLICT (run_id) DO UPDATE SET owner = excluded.owner, claimed_at = excluded.claimed_at",
                       (run_id, owner, now, now))
            return Claim(run_in(db, run_id), owner, now, held["push_since"] if held else None)

    def release(self, run_id: int, owner: str | None = None) -> None:
        """Give a claim back (the push did not happen: no slot, or it failed before reaching the backend)."""
        with self._transaction() as db:
            db.execute("DELETE FROM claims WHERE run_id = ? AND owner = ?", (run_id, owner or owner_id()))

    def check(self) -> list[str]:
        """Problems with the file itself (SQLite's integrity check); an empty list when it is sound."""
        return [r[0] for r in self._query("PRAGMA integrity_check") if r[0] != "ok"]

    def set_outputs(self, run_id: int, output_dir: str, metrics: dict[str, Any]) -> Run:
        """Record where a run's checked outputs are (relative to the project) and its metrics."""
        with self._transaction() as db:
            db.execute("UPDATE runs SET output_dir = ?, metrics_json = ?, updated_at = ? WHERE id = ?",
                       (output_dir, json.dumps(metrics), time.time(), run_id))
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
        if "status" in fields and fields["status"] not in set(SubmissionStatus):
            raise StoreError(f"unknown submission status {fields['status']!r}")
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._transaction() as db:
            db.execute(f"UPDATE submissions SET {assignments}, updated_at = ? WHERE id = ?",
                       (*fields.values(), time.time(), sub_id))
        return self.submission(sub_id)

    def submission(self, sub_id: int) -> Submission:
        rows = self._query("SELECT * FROM submissions WHERE id = ?", (sub_id,))
        if rows:
            return submission_of(rows[0])
        raise RunNotFound(f"no submission with id {sub_id}")

    def submissions(self, competition: str | None = None) -> list[Submission]:
        where, params = ("", ()) if competition is None else (" WHERE competition = ?", (competition,))
        return [submission_of(r) for r in self._query(f"SELECT * FROM submissions{where} ORDER BY id", params)]
