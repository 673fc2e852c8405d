"""The one wait loop (toolkit/core/poll.py), with a fake clock: no real sleeping."""

from __future__ import annotations

import pytest

from toolkit.core.errors import WaitTimeout
from toolkit.core.poll import wait


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


def states(*values):
    items = iter(values)
    return lambda: next(items)


def test_returns_the_final_state_and_backs_off_to_the_cap():
    t = FakeTime()
    seen = []
    result = wait(states(*["RUNNING"] * 7, "COMPLETE"), lambda s: s == "COMPLETE", timeout_s=3600, initial_s=10,
                  max_s=40, factor=2, on_update=seen.append, sleep=t.sleep, clock=t.clock)
    assert result == "COMPLETE"
    assert t.sleeps == [10, 20, 40, 40, 40, 40, 40]
    assert seen == ["RUNNING"] * 7 + ["COMPLETE"]


def test_default_factor_grows_by_half():
    t = FakeTime()
    wait(states(0, 0, 0, 0, 0, 1), bool, timeout_s=1e6, initial_s=1, max_s=3, sleep=t.sleep, clock=t.clock)
    assert t.sleeps == pytest.approx([1, 1.5, 2.25, 3, 3])


def test_done_at_once_never_sleeps():
    t = FakeTime()
    assert wait(lambda: "ERROR", lambda s: s in ("COMPLETE", "ERROR"), timeout_s=10, initial_s=1, max_s=5,
                sleep=t.sleep, clock=t.clock) == "ERROR"
    assert t.sleeps == []


def test_times_out_at_the_deadline():
    t = FakeTime()
    calls = []

    def check():
        calls.append(t.now)
        return "RUNNING"

    with pytest.raises(WaitTimeout) as info:
        wait(check, lambda s: s == "COMPLETE", timeout_s=100, initial_s=30, max_s=60, factor=2,
             sleep=t.sleep, clock=t.clock)
    assert t.sleeps == [30, 60, 10]  # the last sleep is cut to the deadline
    assert t.now == 1100.0
    assert calls[-1] == 1100.0  # one last look at the deadline before giving up
    assert "100 s" in info.value.message and info.value.hint


def test_a_slow_check_counts_against_the_deadline():
    t = FakeTime()

    def slow_check():
        t.now += 25  # the API call itself takes time
        return "RUNNING"

    with pytest.raises(WaitTimeout):
        wait(slow_check, lambda s: False, timeout_s=60, initial_s=10, max_s=10, sleep=t.sleep, clock=t.clock)
    assert sum(t.sleeps) + 25 * (len(t.sleeps) + 1) >= 60
    assert t.now - 1000.0 < 60 + 25 + 10


def test_finishing_on_the_last_look_returns_instead_of_raising():
    t = FakeTime()
    result = wait(states("RUNNING", "RUNNING", "COMPLETE"), lambda s: s == "COMPLETE", timeout_s=15, initial_s=10,
                  max_s=10, sleep=t.sleep, clock=t.clock)
    assert result == "COMPLETE" and t.sleeps == [10, 5]
