"""What a running run is doing, read from its kernel's log: its last progress line (kernel.contract) gives its
phase, epoch k of N and latest validation error; its own epoch times give the time left; a log with no new
progress line for much longer than an epoch takes marks it stalled. Log lines carry no time of their own on
every backend, so a Watch remembers when each run's last line changed, across the polls of one command."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from toolkit.core.errors import ToolkitError
from toolkit.core.status import Status
from toolkit.kernel.contract import parse_progress
from toolkit.project import Project
from toolkit.registry.records import Run
from toolkit.runs.costs.estimate import DEFAULT_MIN_PER_EPOCH, SESSION_OVERHEAD_MIN, TTA_EPOCHS, estimate
from toolkit.runs.watch.logs import own_lines
from toolkit.specs.spec import RunSpec

EPOCH_PHASES = ("frozen", "training")


@dataclass(frozen=True)
class Progress:
    phase: str | None  # None: no progress line yet
    epoch: int = 0  # epochs done in this phase
    epochs: int | None = None  # the phase's total, where it has epochs
    error_rate: float | None = None  # the latest epoch's validation error
    eta_s: float | None = None  # from its own epoch times; None before its first epoch
    silent_s: float = 0.0  # since its last progress line (as far as this command has seen)
    stalled: bool = False


def records(text: str) -> list[dict]:
    """The progress records of a log (a packed run's own lines already picked)."""
    return [r for r in map(parse_progress, text.splitlines()) if r is not None]


def epoch_seconds(recs: list[dict]) -> float | None:
    """The mean time of the run's own epochs: trained ones where there are some (a fine-tune's frozen epoch
    is quicker), else frozen ones."""
    timed = [r for r in recs if r["epoch"] is not None and r["seconds"] is not None]
    main = [r for r in timed if r["phase"] == "training"] or timed
    return sum(r["seconds"] for r in main) / len(main) if main else None


def epochs_left(last: dict, training_epochs: int) -> float:
    """Epochs still to go after `last`, TTA counted as about one (`training_epochs`: the run's own, which
    come after a frozen phase)."""
    if last["phase"] in EPOCH_PHASES:
        done = 0 if last["epoch"] is None else last["epoch"] + 1
        left = max(0, (last["epochs"] or 0) - done)
        return left + (training_epochs if last["phase"] == "frozen" else 0) + TTA_EPOCHS
    return TTA_EPOCHS if last["phase"] == "tta" else 0


def progress_of(recs: list[dict], silent_s: float, expected_s: float, training_epochs: int,
                factor: float, floor_s: float) -> Progress:
    """Progress from a run's records, `silent_s` after the last changed; stalled after `factor` times its own
    epoch time (`expected_s` until it has one), and never before `floor_s`."""
    own = epoch_seconds(recs)
    stalled = silent_s > max(floor_s, factor * (own if own is not None else expected_s))
    if not recs:
        return Progress(None, silent_s=silent_s, stalled=stalled)
    last = recs[-1]
    done = 0 if last["epoch"] is None else last["epoch"] + 1
    errors = [r["error_rate"] for r in recs if r["error_rate"] is not None]
    eta = None if own is None else max(0.0, own * epochs_left(last, training_epochs) - silent_s)
    return Progress(last["phase"], done, last["epochs"], errors[-1] if errors else None, eta, silent_s, stalled)


class Watch:
    """The progress of a command's running training runs, poll after poll: each run's log read once a poll
    (a pack kernel's once for all its runs), never failing the wait that asks."""

    def __init__(self, project: Project, clock: Callable[[], float] = time.monotonic):
        self.project, self.clock = project, clock
        self._seen: dict[str, tuple[int, float]] = {}  # slug -> (progress lines seen, when that count changed)
        self._expected: dict[str, float] = {}  # slug -> seconds until its next line is due, before it has epochs

    def read(self, runs: list[Run]) -> dict[str, Progress]:
        running = [r for r in runs if r.status == Status.RUNNING and r.kind == "train" and r.version]
        logs: dict[tuple[str, int], str | None] = {}
        shown = {}
        for run in running:
            key = (run.kernel, run.version)
            if key not in logs:
                logs[key] = self._log(*key)
            if logs[key] is not None:
                shown[run.slug] = self.observe(run, records(own_lines(logs[key], run)), self.clock())
        return shown

    def observe(self, run: Run, recs: list[dict], now: float) -> Progress:
        """The run's progress given its records now, remembering when their count last changed."""
        count, since = self._seen.get(run.slug, (-1, now))
        if count != len(recs):
            since = now
        self._seen[run.slug] = (len(recs), since)
        config = self.project.config
        return progress_of(recs, now - since, self._expected_s(run, started=bool(recs)),
                           int(run.spec.epochs or 0), config.stall_factor, config.stall_min_s)

    def _log(self, kernel: str, version: int) -> str | None:
        try:
            return self.project.backend.logs(kernel, version)
        except (ToolkitError, OSError, ValueError):  # progress is a nicety: a failed read never fails the wait
            return None

    def _expected_s(self, run: Run, started: bool) -> float:
        """How long its first epoch should take by the estimate, start-up included before its first line."""
        if run.slug not in self._expected:
            try:
                self._expected[run.slug] = self._epoch_s(run.spec)
            except (TypeError, ValueError):  # a spec recorded by another version of the toolkit
                self._expected[run.slug] = 0.0
        return self._expected[run.slug] + (0.0 if started else SESSION_OVERHEAD_MIN * 60)

    def _epoch_s(self, spec: RunSpec) -> float:
        """An epoch's estimate. On this machine only its own finished runs say: the seed's and timm's figures are
        Kaggle GPUs', far too short here to call a run silent by, so until then the guess."""
        est = estimate(self.project, [spec])[0]
        here = self.project.backend_type.runs_here and not est.measured
        return (DEFAULT_MIN_PER_EPOCH if here else est.minutes_per_epoch) * 60
