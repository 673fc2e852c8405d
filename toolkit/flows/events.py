"""What a command's flow reports as it goes, as typed values: the console shows them (toolkit/cli/show.py), a
test collects them in a list. Nothing here prints or decides how anything looks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class Note:
    """Something the user should know that is not a result (stderr)."""

    text: str


@dataclass(frozen=True)
class Said:
    """A line of the command's own output (stdout)."""

    text: str


@dataclass(frozen=True)
class Rendered:
    folder: Path  # relative to the project


@dataclass(frozen=True)
class Checking:
    """--check is running a kernel: what it is doing now."""

    text: str


@dataclass(frozen=True)
class Checked:
    kernels: int
    seconds: float


@dataclass(frozen=True)
class Durations:
    """How long newly recorded runs take on this machine (local backends), before they start."""

    items: list  # (slug, runs.local_duration.Duration)
    long_min: float


@dataclass(frozen=True)
class Packed:
    host: str
    members: list[str]


@dataclass(frozen=True)
class Skipped:
    slug: str
    reason: str


@dataclass(frozen=True)
class SweepPlan:
    """A sweep's plan before anything is pushed."""

    loaded: Any  # specs.sweep_file.Sweep
    planned: list  # runs.plan.Planned
    actions: list  # runs.schedule.Action
    quota_plan: Any  # runs.quota.QuotaPlan


@dataclass(frozen=True)
class QuotaPlanned:
    quota_plan: Any


@dataclass(frozen=True)
class Quota:
    quota: Any  # backends.base.Quota or None


@dataclass(frozen=True)
class Waiting:
    """One poll of a wait: every run of interest, and the running ones' progress."""

    title: str
    runs: list
    progress: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunsShown:
    runs: list
    title: str


@dataclass(frozen=True)
class Failed:
    """A run that ended in ERROR (or whose outputs were refused): its cause, then the end of its log."""

    run: Any
    log_tail: str = ""


@dataclass(frozen=True)
class Retrying:
    runs: list
    named: bool


@dataclass(frozen=True)
class Results:
    """kpull outputs' tables: per competition (name, result rows, curves PNG or None, report written)."""

    tables: list
    fmt: str
    project_dir: Path
    extra: dict


@dataclass(frozen=True)
class Submissions:
    submissions: list


@dataclass(frozen=True)
class Members:
    members: list
    weights: list | None
    steps: list
    backend: str = ""  # the ensemble's: a member trained on another one is shown with its own


@dataclass(frozen=True)
class RerunEstimate:
    estimate: tuple | None
    members: int
    limit_h: float


@dataclass(frozen=True)
class Ensembled:
    rows: list
    result: Any  # ensembles.submit.EnsembleResult
    rerun: bool


@dataclass(frozen=True)
class Written:
    """A file the command wrote that the user opens (the report)."""

    path: Path  # relative to the project


@dataclass(frozen=True)
class LogText:
    """A piece of a kernel's log, as it is."""

    text: str


@dataclass(frozen=True)
class Fetching:
    """kpull data is downloading: what it is doing now."""

    text: str


@dataclass(frozen=True)
class Uploading:
    """A dataset is being uploaded, or processed by the backend: what is happening now."""

    text: str


@dataclass(frozen=True)
class DatasetReady:
    """A dataset the kernels attach is ready: uploaded now (files, bytes) or, unchanged, not uploaded again."""

    ref: str
    version: int | None
    uploaded: bool
    files: int
    bytes: int

    @classmethod
    def of(cls, published: Any) -> DatasetReady:
        upload = published.upload  # runs.datasets.Published
        return cls(published.ref, upload.version, published.uploaded, upload.files, upload.bytes)


Emit = Callable[[object], None]  # what a flow reports each event to


def ignore(event: object) -> None:
    """An Emit for a flow whose events nobody shows."""
