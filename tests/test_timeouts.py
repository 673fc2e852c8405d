"""A session past its limit told apart from a stop, from what Kaggle reports (CANCEL_ACKNOWLEDGED, no message, a log
ending in CellTimeoutError), and what a wait's last line advises for it: no retry of the same run."""

from __future__ import annotations

import dataclasses

import pytest

from toolkit.backends.local.limits import timeout_line
from toolkit.core.status import Status
from toolkit.registry.records import Run
from toolkit.runs.watch.failures import advice, retry_helps
from toolkit.runs.watch.timeouts import TIMED_OUT, cause, ran_past, span, timed_out
from toolkit.runs.watch.wait import RunsFailed, check_finished

HOUR = 3600.0


def a_run(slug="resnet18-0a1b2c3d", host="", limit=32100.0, pushed_at=1000.0, status=Status.RUNNING, message=""):
    return Run(id=1, slug=slug, kind="train", backend="kaggle", competition="paddy", spec_hash="0a1b2c3d", spec={},
               status=status, version=1, url="", failure_message=message, output_dir="", metrics={}, created_at=0.0,
               updated_at=0.0, pushed_at=pushed_at, finished_at=None, host=host, session_limit_s=limit)


def test_the_logs_cell_timeout_says_it_ran_past_the_limit_it_was_pushed_with():
    log = f"epoch 3\nTraceback (most recent call last):\n{timeout_line(43200)}\n"
    assert ran_past(a_run(), log, now=1500.0) == 32100.0  # the limit on record, whatever the line's seconds
    assert ran_past(a_run(limit=None), log, now=1500.0) == 43200.0  # else the line's


def test_without_the_line_only_a_run_as_long_as_its_limit_ran_past_it():
    assert ran_past(a_run(), "epoch 3\n", now=1000.0 + 9 * HOUR) == 32100.0
    assert ran_past(a_run(), "epoch 3\n", now=1000.0 + 2 * HOUR) is None  # stopped in the web UI, by the user
    assert ran_past(a_run(limit=None), "", now=1000.0 + 20 * HOUR) is None  # limit not known: a stop


def test_the_cause_names_the_limit_and_the_pack():
    assert cause(a_run(), 32100.0) == "ran past the session limit (8.9 h), with no outputs"
    assert cause(a_run(host="pack-2-0123abcd"), 3.0).endswith("(3 s) in pack pack-2-0123abcd, with no outputs")
    assert [span(s) for s in (32100, 2700, 3)] == ["8.9 h", "45 min", "3 s"]


def test_a_timeout_is_not_worth_the_same_retry_and_says_what_to_change():
    line = cause(a_run(), 32100.0)
    assert not retry_helps(line) and "fewer epochs" in advice(line) and "--pack" in advice(line)
    assert retry_helps("the kernel's process ended without reporting a result")


@pytest.mark.parametrize("message, says", [
    ("", "kpush retry resnet18-0a1b2c3d pushes them again"),
    ("In [3]: NameError: name 'x' is not defined", "resnet18-0a1b2c3d: own code failed"),
])
def test_a_waits_last_line_advises_each_kind_apart(message, says):
    slow = a_run(slug="vit-0a1b2c3d", status=Status.CANCEL_ACKNOWLEDGED, message=cause(a_run(), 32100.0))
    other = a_run(status=Status.ERROR, message=message)
    stopped = dataclasses.replace(a_run(slug="stopped-0a1b2c3d"), status=Status.CANCEL_ACKNOWLEDGED)
    assert timed_out(slow) and not timed_out(stopped) and slow.failure_message.startswith(TIMED_OUT)
    with pytest.raises(RunsFailed) as info:
        check_finished([slow, other, stopped])
    text = str(info.value)
    assert "2 of 3 runs failed" in text and says in text
    assert "vit-0a1b2c3d ran past the session limit: train fewer epochs" in text and "kpush retry vit" not in text
