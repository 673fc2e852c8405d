"""One wait loop: monotonic deadline, growing sleeps, final state returned, timeout raised."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from toolkit.core.errors import WaitTimeout

T = TypeVar("T")


def wait(check: Callable[[], T], done: Callable[[T], bool], *, timeout_s: float, initial_s: float,
         max_s: float, factor: float = 1.5, on_update: Callable[[T], None] | None = None,
         sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> T:
    """Call `check` until `done(result)`; sleep `initial_s`, growing by `factor` up to `max_s`."""
    deadline = clock() + timeout_s
    interval = initial_s
    while True:
        result = check()
        if on_update is not None:
            on_update(result)
        if done(result):
            return result
        remaining = deadline - clock()
        if remaining <= 0:
            raise WaitTimeout(f"still not finished after {timeout_s:.0f} s",
                              "run the command again later: kernels keep running and nothing is lost")
        sleep(min(interval, remaining))
        interval = min(interval * factor, max_s)
