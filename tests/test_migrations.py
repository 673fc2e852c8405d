"""Registry files written by earlier toolkits open with their data intact (toolkit/registry/schema.py); one from a
newer toolkit is refused in one line and left as it is."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toolkit.core.errors import StoreError
from toolkit.core.status import Status, SubmissionStatus
from toolkit.registry import schema
from toolkit.registry.store import Store, owner_id
from toolkit.specs.spec import RunSpec

# The registry's tables as the toolkit wrote them before migrations were numbered (user_version 0).
UNNUMBERED = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY, slug TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('train', 'ensemble')),
    backend TEXT NOT NULL, competition TEXT NOT NULL, spec_hash TEXT NOT NULL, spec_json TEXT NOT NULL,
    status TEXT NOT NULL, version INTEGER, url TEXT NOT NULL DEFAULT '', failure_message TEXT NOT NULL DEFAULT '',
    output_dir TEXT NOT NULL DEFAULT '', metrics_json TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL,
    updated_at REAL NOT NULL, pushed_at REAL, finished_at REAL, claim_owner TEXT NOT NULL DEFAULT '',
    claimed_at REAL, push_since REAL, host TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_slug ON runs (slug, backend);
CREATE TABLE submissions (
    id INTEGER PRIMARY KEY, backend TEXT NOT NULL, competition TEXT NOT NULL,
    ensemble_run_id INTEGER REFERENCES runs (id), members_json TEXT NOT NULL, weights_json TEXT NOT NULL,
    file TEXT NOT NULL DEFAULT '', ref TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT 'PENDING',
    score REAL, error TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL, updated_at REAL NOT NULL
);
"""
# The first release's tables (toolkit/store.py as first committed): runs without the claim and pack columns.
FIRST_RELEASE = UNNUMBERED.replace(
    ", claim_owner TEXT NOT NULL DEFAULT '',\n    claimed_at REAL, push_since REAL, host TEXT NOT NULL DEFAULT ''\n", "\n")
SPEC = {"arch": "resnet18", "competition": "digits-demo"}
LIVE = f"{owner_id().rsplit(':', 1)[0]}:1"  # pid 1: a command that is still running
CLAIMED, SINCE = time.time() - 60, time.time() - 90  # a claim a minute old, re-claimed once
# id, slug, kind, status, version, output_dir, metrics, pushed_at, finished_at, claim_owner, claimed_at,
# push_since, host
ROWS = [
    (1, "resnet18-aaaaaaaa", "train", "COMPLETE", 2, "outputs/resnet18-aaaaaaaa/v2", {"tta_error": 0.05}, 10.0, 20.0,
     "", None, None, ""),
    (2, "convnext-bbbbbbbb", "train", "NEW", None, "", {}, None, None, LIVE, CLAIMED, SINCE, "pack-cccccccc"),
    (3, "ens-dddddddd", "ensemble", "ERROR", 1, "", {}, 11.0, 21.0, "", None, None, ""),
]


def _write_unnumbered(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(UNNUMBERED)
    for (run_id, slug, kind, status, version, output_dir, metrics, pushed, finished, owner, claimed, since,
         host) in ROWS:
        db.execute("INSERT INTO runs (id, slug, kind, backend, competition, spec_hash, spec_json, status, version,"
                   " url, failure_message, output_dir, metrics_json, created_at, updated_at, pushed_at, finished_at,"
                   " claim_owner, claimed_at, push_since, host) VALUES (?, ?, ?, 'local', 'digits-demo', 'abcd',"
                   " ?, ?, ?, 'u', ?, ?, ?, 1.0, 2.0, ?, ?, ?, ?, ?, ?)",
                   (run_id, slug, kind, json.dumps(SPEC), status, version, "boom" if status == "ERROR" else "",
                    output_dir, json.dumps(metrics), pushed, finished, owner, claimed, since, host))
    db.execute("INSERT INTO submissions (backend, competition, ensemble_run_id, members_json, weights_json, ref,"
               " status, score, created_at, updated_at) VALUES ('local', 'digits-demo', 3, '[\"resnet18-aaaaaaaa\"]',"
               " '[1.0]', '7', 'COMPLETE', 0.93, 1.0, 2.0)")
    db.commit()
    db.close()


def _pragma(path: Path, sql: str) -> list:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_an_unnumbered_registry_migrates_with_its_data_and_claims(tmp_path):
    path = tmp_path / "runs.sqlite"
    _write_unnumbered(path)
    store = Store(path)
    assert _pragma(path, "PRAGMA user_version") == [(schema.LATEST,)]
    columns = {row[1] for row in _pragma(path, "PRAGMA table_info(runs)")}
    assert "claim_owner" not in columns and "push_since" not in columns and "host" in columns
    done, waiting, ensemble = store.runs()
    assert (done.slug, done.status, done.version, done.output_dir, done.metrics) == \
        ("resnet18-aaaaaaaa", Status.COMPLETE, 2, "outputs/resnet18-aaaaaaaa/v2", {"tta_error": 0.05})
    assert (done.pushed_at, done.finished_at, done.created_at, done.spec, done.claim_owner) == \
        (10.0, 20.0, 1.0, RunSpec.from_record(SPEC), "")
    assert (ensemble.status, ensemble.failure_message, ensemble.kind) == (Status.ERROR, "boom", "ensemble")
    assert (waiting.status, waiting.host, waiting.claim_owner, waiting.claimed_at, waiting.push_since) == \
        (Status.NEW, "pack-cccccccc", LIVE, CLAIMED, SINCE)
    (sub,) = store.submissions()
    assert (sub.status, sub.score, sub.ref, sub.ensemble_run_id, sub.members) == \
        (SubmissionStatus.COMPLETE, 0.93, "7", 3, ["resnet18-aaaaaaaa"])
    assert ("runs_slug",) in _pragma(path, "SELECT name FROM sqlite_master WHERE type = 'index'")
    assert store.check() == []
    # Migration 3: the versions on record per kernel (a waiting packed run's is of an unknown kernel: left out).
    assert store.known_version("resnet18-aaaaaaaa", "local") == 2 and store.known_version("ens-dddddddd", "local") == 1
    assert store.known_version("pack-cccccccc", "local") is None and done.kernel_slug == ""


def test_a_migrated_claim_still_decides_who_pushes(tmp_path):
    path = tmp_path / "runs.sqlite"
    _write_unnumbered(path)
    store = Store(path)
    assert store.claim(2) is None  # the live command's claim came across
    taken = store.claim(2, stale_s=0)  # once stale it is taken over, and the lost push is looked for
    assert taken is not None and taken.previous_at == SINCE
    store.record_push([2], 1, "u")
    assert store.get(2).claim_owner == "" and _pragma(path, "SELECT * FROM claims") == []


def test_referential_checks_survive_the_rebuilt_runs_table(tmp_path):
    path = tmp_path / "runs.sqlite"
    _write_unnumbered(path)
    store = Store(path)
    with pytest.raises(sqlite3.IntegrityError):
        store.add_submission("local", "digits-demo", 42, ["a"], [1.0])
    with pytest.raises(sqlite3.IntegrityError):
        store.add_run("x-11111111", "other", "local", "d", "1111", SPEC)


def test_a_first_release_registry_gains_the_later_columns(tmp_path):
    assert "claim_owner" not in FIRST_RELEASE and "host" not in FIRST_RELEASE
    path = tmp_path / "runs.sqlite"
    db = sqlite3.connect(path)
    db.executescript(FIRST_RELEASE)
    db.execute("INSERT INTO runs (slug, kind, backend, competition, spec_hash, spec_json, status, created_at,"
               " updated_at) VALUES ('resnet18-abcdef12', 'train', 'local', 'd', 'abcdef12', ?, 'NEW', 1.0, 1.0)",
               (json.dumps(SPEC),))
    db.commit()
    db.close()
    store = Store(path)
    (run,) = store.runs()
    assert (run.slug, run.status, run.spec, run.host, run.claim_owner) == ("resnet18-abcdef12", Status.NEW,
                                                                          RunSpec.from_record(SPEC), "", "")
    assert store.claim(run.id).run.claim_owner == owner_id() and store.check() == []


def test_migrations_apply_all_or_nothing(tmp_path):
    """A first-release file that also holds a table named like migration 2's: migration 1 applies, 2
    fails, and the file is left exactly as it was (no half-migrated registry)."""
    path = tmp_path / "runs.sqlite"
    db = sqlite3.connect(path)
    db.executescript(FIRST_RELEASE + "CREATE TABLE claims (note TEXT);")
    db.close()
    with pytest.raises(sqlite3.OperationalError, match="claims already exists"):
        Store(path)
    assert _pragma(path, "PRAGMA user_version") == [(0,)]
    assert "claim_owner" not in {row[1] for row in _pragma(path, "PRAGMA table_info(runs)")}
    assert ("runs_v2",) not in _pragma(path, "SELECT name FROM sqlite_master")


def test_a_current_registry_opens_without_a_write(tmp_path):
    path = tmp_path / "runs.sqlite"
    Store(path).add_run("resnet18-abcdef12", "train", "local", "d", "abcdef12", SPEC)
    db = sqlite3.connect(path)
    db.execute("BEGIN IMMEDIATE")  # another command holds the write lock
    try:
        assert Store(path).get(1).slug == "resnet18-abcdef12"  # opening does not wait for it
    finally:
        db.rollback()
        db.close()


def _newer(path: Path) -> None:
    Store(path)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {schema.LATEST + 1}")
    db.close()


def test_a_registry_from_a_newer_toolkit_is_refused_and_kept(tmp_path):
    path = tmp_path / "runs.sqlite"
    _newer(path)
    with pytest.raises(StoreError) as info:
        Store(path)
    assert "newer" in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)
    assert _pragma(path, "PRAGMA user_version") == [(schema.LATEST + 1,)]
    assert [p.name for p in tmp_path.iterdir() if "damaged" in p.name] == []  # not mistaken for damage


def test_kstatus_refuses_a_newer_registry_in_one_line(tmp_path):
    _newer(tmp_path / ".toolkit" / "runs.sqlite")  # (Store makes the folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOOLKIT_", "KAGGLE_"))}
    env.update(TOOLKIT_PROJECT=str(tmp_path), COLUMNS="200")
    result = subprocess.run([str(Path(sys.executable).parent / "kstatus"), "--no-refresh"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"registry schema {schema.LATEST + 1}" in lines[0] and "upgrade the toolkit" in lines[0]


def test_absolute_paths_become_relative_to_the_project(tmp_path):
    """A registry from before paths were kept relative: a copied or moved project reads its own outputs."""
    path = tmp_path / "runs.sqlite"
    _write_unnumbered(path)
    db = sqlite3.connect(path)
    db.execute("UPDATE runs SET output_dir = '/old/project/outputs/resnet18-aaaaaaaa/v2' WHERE id = 1")
    db.execute("UPDATE submissions SET file = '/old/project/outputs/ens-dddddddd/v1/submission.csv'")
    db.commit()
    db.close()
    store = Store(path)
    assert store.runs()[0].output_dir == "outputs/resnet18-aaaaaaaa/v2"
    assert store.submissions()[0].file == "outputs/ens-dddddddd/v1/submission.csv"


def test_a_registry_from_before_datasets_gains_their_table(tmp_path):
    """Migration 8: a registry at 7 keeps its runs and records datasets uploaded for kernels from then on."""
    path = tmp_path / "runs.sqlite"
    _write_unnumbered(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    schema._apply(db, 0, str(path))
    db.execute("DROP TABLE datasets")
    db.execute("PRAGMA user_version = 7")
    db.execute("COMMIT")
    db.close()
    store = Store(path)
    assert _pragma(path, "PRAGMA user_version") == [(8,)] == [(schema.LATEST,)] and len(store.runs()) == 3
    assert store.latest_dataset("kaggle", "me/x-members") is None
    upload = store.add_dataset("kaggle", "me/x-members", "ab" * 32, 2, 10)
    assert store.latest_dataset("kaggle", "me/x-members") == upload and upload.version is None
    assert store.dataset_ready(upload.id, 3).version == 3
