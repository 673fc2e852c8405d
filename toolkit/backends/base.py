"""The Backend protocol and what backends report, in the status vocabulary of toolkit.model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..model import TERMINAL, Status, SubmissionStatus  # noqa: F401  (imported from here too)


@dataclass(frozen=True)
class PushResult:
    version: int
    url: str


@dataclass(frozen=True)
class KernelState:
    status: Status
    failure_message: str = ""


@dataclass(frozen=True)
class SubmissionResult:
    ref: str
    status: SubmissionStatus
    score: float | None = None
    error: str = ""


@dataclass(frozen=True)
class Quota:
    used_hours: float
    allowed_hours: float
    refresh: str = ""
    reserved_hours: float = 0.0  # held by queued and running sessions, not yet counted as used

    @property
    def left_hours(self) -> float:
        """What a new session can still count on: reserved time is as good as spent."""
        return max(0.0, self.allowed_hours - self.used_hours - self.reserved_hours)


class Backend(Protocol):
    name: str
    username: str

    def push(self, folder: Path) -> PushResult:
        """Start the kernel in `folder` as a new version of its slug."""

    def status(self, slug: str, version: int) -> KernelState:
        """State of that exact version."""

    def output(self, slug: str, version: int, dest: Path, names: tuple[str, ...]) -> list[Path]:
        """Download the named output files of that version into `dest`."""

    def logs(self, slug: str, version: int) -> str:
        """The kernel's log as text."""

    def submit(self, competition: str, file: Path, message: str,
               slug: str | None = None, version: int | None = None) -> SubmissionResult:
        """Submit a file (or, for code competitions, the kernel version that writes it)."""

    def submission(self, competition: str, ref: str) -> SubmissionResult:
        """Current state of a submission."""

    def quota(self) -> Quota | None:
        """GPU hours used, reserved and allowed, where the backend has a quota."""
