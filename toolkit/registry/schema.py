"""The registry's tables, built by numbered migrations.

A registry file records the last migration applied to it in SQLite's `PRAGMA user_version` (0: none, or
a file from before migrations were numbered). Opening a store applies the missing ones in order, all in
one transaction, and refuses a file that a newer toolkit has taken further than this one knows.
"""

from __future__ import annotations

import sqlite3
from typing import Callable

from toolkit.core.errors import StoreError

# The runs table's columns as the first release declared them. Migrations 1 and 2 both build on this
# text, so it never changes: a later change to runs is a migration of its own.
FIRST_RUN_COLUMNS = """
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
    finished_at REAL"""

# -- 1: the registry as it was before migrations were numbered --------------------------------------
# Columns added to runs after the first release (its files gained them as they were opened).
V1_ADDED = (("claim_owner", "TEXT NOT NULL DEFAULT ''"), ("claimed_at", "REAL"), ("host", "TEXT NOT NULL DEFAULT ''"),
            ("push_since", "REAL"))
V1 = (
    f"CREATE TABLE IF NOT EXISTS runs ({FIRST_RUN_COLUMNS}, {', '.join(' '.join(c) for c in V1_ADDED)})",
    "CREATE INDEX IF NOT EXISTS runs_slug ON runs (slug, backend)",
    """CREATE TABLE IF NOT EXISTS submissions (
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
    )""",
)


def _v1(db: sqlite3.Connection) -> None:
    for statement in V1:
        db.execute(statement)
    columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    for name, declaration in V1_ADDED:
        if name not in columns:
            db.execute(f"ALTER TABLE runs ADD COLUMN {name} {declaration}")


# -- 2: push claims in a table of their own ---------------------------------------------------------
# A claim lives apart from its run, so a status change never has to reset it: recording a push, a
# requeue or a release deletes the run's claim row. The claim columns leave `runs` by rebuilding the
# table (SQLite's documented way; ALTER TABLE DROP COLUMN needs 3.35), so no stale column is left that
# old SQL could still write to and believe it had claimed a run.

CLAIMS = """CREATE TABLE claims (
    run_id INTEGER PRIMARY KEY REFERENCES runs (id),
    owner TEXT NOT NULL,
    claimed_at REAL NOT NULL,
    push_since REAL NOT NULL
)"""
RUNS_V2 = f"CREATE TABLE runs_v2 ({FIRST_RUN_COLUMNS}, host TEXT NOT NULL DEFAULT '')"
RUN_COLUMNS = ("id, slug, kind, backend, competition, spec_hash, spec_json, status, version, url, failure_message,"
               " output_dir, metrics_json, created_at, updated_at, pushed_at, finished_at, host")


def _v2(db: sqlite3.Connection) -> None:
    db.execute(CLAIMS)
    # A claim without a time counts as stale (taken over at once), and one without the start of its
    # push attempt as possibly pushed at any time since (the next command asks the backend first).
    db.execute("INSERT INTO claims (run_id, owner, claimed_at, push_since) SELECT id, claim_owner,"
               " COALESCE(claimed_at, 0), COALESCE(push_since, claimed_at, 0) FROM runs WHERE claim_owner != ''")
    db.execute(RUNS_V2)
    db.execute(f"INSERT INTO runs_v2 ({RUN_COLUMNS}) SELECT {RUN_COLUMNS} FROM runs")
    db.execute("DROP TABLE runs")
    db.execute("ALTER TABLE runs_v2 RENAME TO runs")
    db.execute("CREATE INDEX runs_slug ON runs (slug, backend)")


# -- 3: every kernel version the registry recorded, and runs pushed under a slug of their own ---------
# A lost push is reconciled by asking whether the backend has a version newer than the last one recorded
# for that kernel (version numbers compare; clocks need not agree), and a refused first push is recognised
# by there being no recorded version at all. A run's own row cannot say: it keeps only its latest version,
# and a retried run may have moved between a pack kernel and its own. `kernel_slug` is the slug a run is
# pushed under when its own was poisoned by an empty kernel a refused push left on Kaggle.

KERNEL_VERSIONS = """CREATE TABLE kernel_versions (
    backend TEXT NOT NULL,
    kernel TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (backend, kernel, version)
)"""


def _v3(db: sqlite3.Connection) -> None:
    db.execute(KERNEL_VERSIONS)
    # A waiting run in a pack keeps the version of the kernel it ran in before: which one is not known.
    db.execute("INSERT OR IGNORE INTO kernel_versions (backend, kernel, version) SELECT backend,"
               " CASE WHEN host != '' THEN host ELSE slug END, version FROM runs"
               " WHERE version IS NOT NULL AND NOT (status = 'NEW' AND host != '')")
    db.execute("ALTER TABLE runs ADD COLUMN kernel_slug TEXT NOT NULL DEFAULT ''")


def _v4(db: sqlite3.Connection) -> None:
    # A waiting run held back for a later week's GPU quota: not pushed before this time (NULL: whenever a slot is).
    db.execute("ALTER TABLE runs ADD COLUMN not_before REAL")


def _v5(db: sqlite3.Connection) -> None:
    # A run the user set aside (kpush aside): kept, listed on request, but no longer waited for, counted in a
    # command's exit or ensembled. NULL: counted.
    db.execute("ALTER TABLE runs ADD COLUMN set_aside_at REAL")


def _v6(db: sqlite3.Connection) -> None:
    # A project is its folder: paths kept relative to it, so a moved or copied project reads its own files.
    # Downloaded outputs always lived in <project>/outputs/<slug>/v<version>, whatever the project was called.
    db.execute("UPDATE runs SET output_dir = 'outputs/' || slug || '/v' || version"
               " WHERE output_dir LIKE '/%' AND version IS NOT NULL")
    for sub_id, file in db.execute("SELECT id, file FROM submissions WHERE file LIKE '/%'").fetchall():
        at = file.rfind("/outputs/")
        if at >= 0:
            db.execute("UPDATE submissions SET file = ? WHERE id = ?", (file[at + 1:], sub_id))


def _v7(db: sqlite3.Connection) -> None:
    # The session limit (seconds) a run's version was pushed with: a version Kaggle ends CANCEL_ACKNOWLEDGED after
    # running that long ran past it (runs/watch/timeouts.py). NULL: not known (pushed before this, or rebuilt).
    db.execute("ALTER TABLE runs ADD COLUMN session_limit_s REAL")


# -- 8: datasets uploaded for kernels ------------------------------------------------------------------
# One row per content uploaded to a backend's dataset (`ref`: owner/slug): what it held (`content_hash`, over every
# file's name and bytes) and, once the backend has processed it, its version number. The same content is never
# uploaded twice: the next command finds it here and only checks that the backend still has that version.

DATASETS = """CREATE TABLE datasets (
    id INTEGER PRIMARY KEY,
    backend TEXT NOT NULL,
    ref TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    files INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    version INTEGER,
    uploaded_at REAL NOT NULL,
    ready_at REAL
)"""


def _v8(db: sqlite3.Connection) -> None:
    db.execute(DATASETS)
    db.execute("CREATE INDEX datasets_ref ON datasets (backend, ref)")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8)
LATEST = len(MIGRATIONS)


def version(db: sqlite3.Connection) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def migrate(db: sqlite3.Connection, where: str) -> None:
    """Bring the file behind `db` (an autocommit connection) to LATEST in one transaction: either every
    missing migration is applied or none is. `where` names the file in the error for a newer one."""
    if version(db) == LATEST:  # the usual case: no write lock taken
        return
    db.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction; rebuilding `runs` needs it off
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            _apply(db, version(db), where)  # read again under the lock: another command may have migrated
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.execute("PRAGMA foreign_keys=ON")


def _apply(db: sqlite3.Connection, current: int, where: str) -> None:
    if current > LATEST:
        raise StoreError(f"{where} has registry schema {current}, newer than the {LATEST} this toolkit knows",
                         "upgrade the toolkit to open it")
    for step in MIGRATIONS[current:]:
        step(db)
    broken = db.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise StoreError(f"{where}: migrating left {len(broken)} rows pointing at missing runs")
    db.execute(f"PRAGMA user_version = {LATEST}")
