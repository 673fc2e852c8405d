"""Calls to the kaggle client and what they answer, made plain: a wall-clock limit around each call (the client
sets none), the output-name pattern it filters with, and its replies (submissions, datetimes, durations,
logs) as the toolkit's values."""

from __future__ import annotations

import json
import re
import threading
from datetime import timezone
from typing import Any, Callable

from toolkit.backends.base import SubmissionResult
from toolkit.core.errors import BackendError
from toolkit.core.status import SubmissionStatus


def within(seconds: float, what: str, func: Callable, *args: Any, **kwargs: Any) -> Any:
    """`func(*args)` with a wall-clock limit: the client sets no timeouts, so a silent connection would hang
    the command forever. The call runs in a daemon thread, which is left behind (and dies with the process)
    if it outlasts the limit."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = func(*args, **kwargs)
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name=f"kaggle: {what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise BackendError(f"Kaggle did not answer {what} within {seconds:g} s",
                           "check the network and run the command again; nothing is lost")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def names_pattern(names: tuple[str, ...]) -> str:
    """A regex that `re.search` matches against exactly these output names and nothing else."""
    return "^(?:" + "|".join(re.escape(n) for n in names) + ")$"


def submission_result(sub: Any, ref: str) -> SubmissionResult:
    status = SubmissionStatus(sub.status.name) if sub.status is not None else SubmissionStatus.PENDING
    score = float(sub.public_score) if sub.public_score not in (None, "") else None
    error = sub.error_description or ""
    if status == SubmissionStatus.ERROR and not error:
        error = "Kaggle reported an error without a description (see the competition's submissions page)"
    return SubmissionResult(ref=str(sub.ref or ref), status=status, score=score, error=error)


def epoch_seconds(moment: Any) -> float:
    """Unix time of a client datetime (the client parses Kaggle's "...Z" into a naive UTC datetime)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def hours(delta: Any) -> float:
    return delta.total_seconds() / 3600 if delta is not None else 0.0


def log_text(raw: str) -> str:
    """Kaggle's log is a JSON list of {stream_name, time, data}; make it plain text."""
    if not raw:
        return ""
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    if not isinstance(entries, list):
        return raw
    return "".join(str(e.get("data", "")) for e in entries if isinstance(e, dict))
