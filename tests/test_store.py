"""The SQLite run registry (toolkit/registry/store.py), on real database files."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from toolkit.core.errors import RunNotFound, StoreError
from toolkit.core.status import Status, SubmissionStatus
from toolkit.registry.records import ALLOWED
from toolkit.registry.store import Store
from toolkit.specs.spec import RunSpec

SPEC = {"arch": "resnet18", "competition": "digits-demo", "epochs": 3}


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "state" / "runs.sqlite")


def add(store: Store, slug: str = "resnet18-abcdef12", **kw):
    args = dict(kind="train", backend="local", competition="digits-demo", spec_hash="abcdef12", spec=SPEC)
    args.update(kw)
    return store.add_run(slug, **args)


def test_add_run(store):
    run = add(store)
    assert run.id == 1 and run.slug == "resnet18-abcdef12" and run.status is Status.NEW
    assert run.spec == RunSpec.from_record(SPEC) and run.metrics == {} and run.version is None
    assert run.pushed_at is None and run.finished_at is None and run.created_at == run.updated_at
    assert store.get(run.id) == run


def test_kind_is_checked(store):
    with pytest.raises(sqlite3.IntegrityError):
        add(store, kind="other")


def test_wal_mode_is_on(store):
    db = sqlite3.connect(store.path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_push_sets_version_url_and_pushed_at(store):
    run = add(store)
    pushed = store.set_status(run.id, Status.QUEUED, version=3, url="https://www.kaggle.com/code/a/b")
    assert pushed.status is Status.QUEUED and pushed.version == 3 and pushed.url.endswith("/a/b")
    assert pushed.pushed_at is not None and pushed.finished_at is None
    running = store.set_status(run.id, Status.RUNNING)
    assert running.version == 3 and running.url == pushed.url and running.pushed_at == pushed.pushed_at
    done = store.set_status(run.id, Status.COMPLETE)
    assert done.finished_at is not None and done.finished_at >= done.pushed_at
    assert done.updated_at >= running.updated_at


def test_error_keeps_its_message(store):
    run = add(store)
    store.set_status(run.id, Status.RUNNING, version=1)
    failed = store.set_status(run.id, Status.ERROR, failure_message="CUDA out of memory")
    assert failed.status is Status.ERROR and failed.failure_message == "CUDA out of memory"
    assert failed.finished_at is not None


@pytest.mark.parametrize("path", [
    [Status.QUEUED, Status.RUNNING, Status.COMPLETE],
    [Status.QUEUED, Status.QUEUED, Status.RUNNING, Status.RUNNING, Status.ERROR],
    [Status.RUNNING, Status.CANCEL_REQUESTED, Status.CANCEL_ACKNOWLEDGED],
    [Status.COMPLETE, Status.COMPLETE],
    [Status.ERROR],
    [Status.QUEUED, Status.CANCEL_ACKNOWLEDGED],
])
def test_allowed_transitions(store, path):
    run = add(store)
    for status in path:
        assert store.set_status(run.id, status).status is status


@pytest.mark.parametrize("path, refused", [
    ([Status.QUEUED, Status.RUNNING, Status.COMPLETE], Status.RUNNING),
    ([Status.COMPLETE], Status.ERROR),
    ([Status.ERROR], Status.QUEUED),
    ([Status.RUNNING], Status.QUEUED),
    ([Status.RUNNING], Status.NEW),
    ([], Status.CANCEL_REQUESTED),
    ([Status.QUEUED, Status.CANCEL_ACKNOWLEDGED], Status.RUNNING),
])
def test_refused_transitions_change_nothing(store, path, refused):
    run = add(store)
    for status in path:
        store.set_status(run.id, status, version=1)
    before = store.get(run.id)
    with pytest.raises(StoreError) as info:
        store.set_status(run.id, refused, failure_message="nope", version=9, url="x")
    assert before.status.value in info.value.message and refused.value in info.value.message
    assert store.get(run.id) == before


def test_terminal_states_only_repeat():
    for status in Status:
        if status.terminal:
            assert ALLOWED[status] == {status}
    assert set(ALLOWED) == set(Status)


def test_unknown_run(store):
    with pytest.raises(RunNotFound):
        store.get(99)
    with pytest.raises(RunNotFound):
        store.set_status(99, Status.QUEUED)


def test_requeue_clears_the_outcome(store, tmp_path):
    run = add(store)
    store.set_status(run.id, Status.RUNNING, version=2, url="u")
    store.set_status(run.id, Status.ERROR, failure_message="boom")
    store.set_outputs(run.id, "out", {"tta_error": 0.1})
    again = store.requeue(run.id)
    assert again.status is Status.NEW and again.failure_message == "" and again.output_dir == ""
    assert again.metrics == {} and again.finished_at is None
    assert again.version == 2  # history kept: the next push makes version 3
    assert store.set_status(run.id, Status.QUEUED, version=3).version == 3


def test_set_outputs(store, tmp_path):
    run = add(store)
    store.set_status(run.id, Status.COMPLETE, version=1)
    updated = store.set_outputs(run.id, f"outputs/{run.slug}", {"tta_error": 0.05, "epochs": [1, 2]})
    assert updated.output_dir == f"outputs/{run.slug}"
    assert updated.metrics == {"tta_error": 0.05, "epochs": [1, 2]}
    assert updated.status is Status.COMPLETE


def test_runs_filters_and_latest(store):
    a = add(store, slug="a-11111111")
    b = add(store, slug="b-22222222", backend="kaggle")
    store.set_status(a.id, Status.COMPLETE, version=1)  # a finished run's slug may run again as a new row
    c = add(store, slug="a-11111111")
    e = add(store, slug="ens-33333333", kind="ensemble", competition="paddy-disease-classification")
    assert [r.id for r in store.runs()] == [a.id, b.id, c.id, e.id]
    assert [r.id for r in store.runs(backend="kaggle")] == [b.id]
    assert [r.id for r in store.runs(kind="ensemble")] == [e.id]
    assert [r.id for r in store.runs(competition="digits-demo", backend="local")] == [a.id, c.id]
    assert store.latest("a-11111111", "local").id == c.id
    assert store.latest("a-11111111", "kaggle") is None


def claims(store: Store) -> list[tuple]:
    db = sqlite3.connect(store.path)
    try:
        return db.execute("SELECT run_id, owner FROM claims ORDER BY run_id").fetchall()
    finally:
        db.close()


def test_a_claim_is_a_row_of_its_own_until_the_push_is_recorded(store):
    run = add(store)
    claim = store.claim(run.id, owner="host:1")
    assert claim is not None and claim.run.claim_owner == "host:1" and claims(store) == [(run.id, "host:1")]
    assert store.get(run.id).updated_at == run.updated_at  # claiming does not change the run itself
    store.release(run.id, owner="host:2")  # only its owner gives a claim back
    assert claims(store) == [(run.id, "host:1")]
    store.record_push([run.id], 1, "u")
    assert claims(store) == [] and store.get(run.id).claim_owner == ""


def test_a_requeued_run_starts_without_a_claim(store):
    run = add(store)
    store.claim(run.id, owner="host:1")
    store.set_status(run.id, Status.ERROR, failure_message="refused")  # ended before any version
    assert store.requeue(run.id).claim_owner == "" and claims(store) == []
    again = store.claim(run.id, owner="host:2")
    assert again is not None and again.previous_at is None  # no earlier push to look for


def test_submissions(store):
    ens = add(store, slug="ens-33333333", kind="ensemble")
    sub = store.add_submission("local", "digits-demo", ens.id, ["a-11111111", "b-22222222"], [1.0, 2.0])
    assert sub.status is SubmissionStatus.PENDING and sub.score is None and sub.members == ["a-11111111", "b-22222222"]
    assert sub.weights == [1.0, 2.0] and sub.ensemble_run_id == ens.id
    done = store.update_submission(sub.id, status="COMPLETE", score=0.93, ref="123", file="submission.csv")
    assert (done.status, done.score, done.ref, done.file) == ("COMPLETE", 0.93, "123", "submission.csv")
    assert done.status is SubmissionStatus.COMPLETE and json.dumps(done.status) == '"COMPLETE"'
    assert done.updated_at >= sub.updated_at
    other = store.add_submission("kaggle", "paddy-disease-classification", None, ["x"], [1.0])
    assert [s.id for s in store.submissions()] == [sub.id, other.id]
    assert [s.id for s in store.submissions("digits-demo")] == [sub.id]
    with pytest.raises(StoreError):
        store.update_submission(sub.id, members_json="[]")
    with pytest.raises(StoreError, match="unknown submission status 'DONE'"):
        store.update_submission(sub.id, status="DONE")
    with pytest.raises(RunNotFound):
        store.submission(999)


def test_submission_needs_an_existing_ensemble_run(store):
    with pytest.raises(sqlite3.IntegrityError):
        store.add_submission("local", "digits-demo", 42, ["a"], [1.0])


def test_two_stores_on_one_file_see_each_other(tmp_path):
    path = tmp_path / "runs.sqlite"
    first, second = Store(path), Store(path)
    run = add(first)
    assert second.get(run.id).status is Status.NEW
    second.set_status(run.id, Status.RUNNING, version=1)
    assert first.get(run.id).status is Status.RUNNING
    with pytest.raises(StoreError):  # the first sees the second's state when checking transitions
        first.set_status(run.id, Status.NEW)
    reopened = Store(path)  # opening again keeps the data (schema creation is idempotent)
    assert reopened.get(run.id).version == 1


def test_concurrent_writers_do_not_lose_updates(tmp_path):
    path = tmp_path / "runs.sqlite"
    Store(path)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            store = Store(path)
            for i in range(10):
                run = add(store, slug=f"w{n}-{i:08d}")
                store.set_status(run.id, Status.QUEUED, version=1)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    runs = Store(path).runs()
    assert len(runs) == 60 and all(r.status is Status.QUEUED for r in runs)


def test_the_versions_of_each_kernel_are_remembered_across_retries_packs_and_renames(store):
    run = add(store)
    assert store.known_version(run.slug, "local") is None  # never pushed: nothing recorded
    store.record_push([run.id], 1, "u")
    store.set_status(run.id, Status.ERROR, "boom")
    store.requeue(run.id)  # a retry: the run's row forgets nothing the registry needs
    assert store.known_version(run.slug, "local") == 1
    store.set_host([run.id], "pack-2-0a1b2c3d")
    store.record_push([run.id], 1, "p")
    assert store.known_version("pack-2-0a1b2c3d", "local") == 1 and store.known_version(run.slug, "local") == 1
    store.set_status(run.id, Status.ERROR, "boom")
    retried = store.requeue(run.id)
    assert (retried.host, retried.kernel) == ("", run.slug)  # retried in a kernel of its own
    store.rename_kernel([run.id], f"{run.slug}-r2")
    assert store.get(run.id).kernel == f"{run.slug}-r2"
    store.record_push([run.id], 1, "r")
    assert store.known_version(f"{run.slug}-r2", "local") == 1
    store.set_status(run.id, Status.ERROR, "boom")
    assert store.requeue(run.id).kernel == f"{run.slug}-r2"  # its own slug stays blocked: the fresh one stays
