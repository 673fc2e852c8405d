"""The Backend protocol and what backends report, in the status vocabulary of toolkit.model."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator, Protocol, runtime_checkable

from toolkit.core.config import Config
from toolkit.core.errors import SubmissionLimitReached
from toolkit.core.status import Status, SubmissionStatus


@dataclass(frozen=True)
class PushResult:
    version: int
    url: str


@dataclass(frozen=True)
class KernelState:
    status: Status
    failure_message: str = ""
    # The version that carries on where this one was lost, when the backend resubmitted it itself (Ray: a job
    # its cluster lost, once); `failure_message` then says so. None: this version stands on its own.
    moved_to: PushResult | None = None


def utc_minute(seconds: float) -> str:
    """Epoch seconds as "2030-01-06 00:00 UTC"."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


@dataclass(frozen=True)
class SubmissionResult:
    ref: str
    status: SubmissionStatus
    score: float | None = None
    error: str = ""


@dataclass(frozen=True)
class Allowance:
    """A competition's submissions left to this account, as Kaggle's GetSubmissionLimits counts them (kagglesdk
    0.1.38 ApiSubmissionLimits: valid submissions since 00:00 UTC, in all, and how many more today)."""

    left: int  # more submissions allowed today (UTC)
    today: int
    total: int
    lifetime_cap: bool = False  # `left` was cut by the competition's cap on all submissions, not the daily one

    def refusal(self, competition: str) -> SubmissionLimitReached:
        """The one line for a submission past the limit, in Kaggle's words: its refusal as public 2026 scripts
        quote it ("Your team has used its daily Submission allowance (N) today"), and what kaggle 2.2.5 prints
        after a submit ("N submissions remaining today.", Kaggle/kaggle-cli#1144)."""
        if self.lifetime_cap:
            return SubmissionLimitReached(f"{competition} takes no more submissions from your team: its cap on all "
                                          f"submissions is reached ({self.total} made)",
                                          "compare runs with kpull outputs; the submissions made still count")
        midnight = (time.time() // 86400 + 1) * 86400
        return SubmissionLimitReached(f"{competition} takes no more submissions today: your team has used its daily "
                                      f"Submission allowance ({self.today}) today, 0 submissions remaining today",
                                      f"it resets at 00:00 UTC ({utc_minute(midnight)}): run ksubmit ensemble again "
                                      "then (an ensemble kernel that already ran is not run again)")


def check_allowance(backend: "Backend", competition: str) -> None:
    """Refuse, in one line, a submission the competition would not take today (its daily limit or its cap on all
    submissions: one call); where the allowance cannot be read, the submission goes ahead."""
    allowance = backend.allowance(competition)
    if allowance is not None and allowance.left == 0:
        raise allowance.refusal(competition) from None


@dataclass(frozen=True)
class DatasetState:
    """A dataset's newest version as the backend sees it: READY once kernels can attach it, PENDING while it is
    being processed, FAILED when processing failed; `version` its number (None where the backend has none)."""

    status: str
    version: int | None = None

    READY: ClassVar[str] = "READY"
    PENDING: ClassVar[str] = "PENDING"
    FAILED: ClassVar[str] = "FAILED"


@dataclass(frozen=True)
class Quota:
    used_hours: float
    allowed_hours: float
    reserved_hours: float = 0.0  # held by queued and running sessions, not yet counted as used
    refresh_at: float | None = None  # when the week's quota comes back, epoch seconds (None: not said)

    @property
    def refresh(self) -> str:
        """The refresh time as people read it ("" when not said)."""
        return "" if self.refresh_at is None else utc_minute(self.refresh_at)

    @property
    def left_hours(self) -> float:
        """What a new session can still count on: reserved time is as good as spent."""
        return max(0.0, self.allowed_hours - self.used_hours - self.reserved_hours)


@runtime_checkable
class Backend(Protocol):
    """Everything callers use of a backend. The class-level members say what it can do and where it finds
    things, known without connecting to it (planning a run for Kaggle needs no credentials); the instance
    methods talk to it."""

    name: ClassVar[str]
    # Accepts every push and starts kernels itself as its slots free; else pushes wait for `concurrency`.
    queues: ClassVar[bool]
    can_stop: ClassVar[bool]  # has a call that stops a running kernel (Kaggle has none)
    runs_here: ClassVar[bool]  # kernels run on this machine, so their duration here is worth a word
    poll_s: ClassVar[tuple[float, float] | None]  # its (first, longest) poll interval when the user set none
    # Its kernels attach datasets uploaded from this machine (Kaggle); else a dataset source is a folder of
    # datasets_root here, which its kernels mount as it is (nothing to upload).
    uploads_datasets: ClassVar[bool]
    username: str

    @classmethod
    def competitions_root(cls, config: Config) -> Path | None:
        """The folder on this machine that must hold a run's competition before it is rendered; None where
        the backend holds competitions itself."""

    @classmethod
    def weights_file(cls, config: Config, arch: str) -> Path | None:
        """Where pretrained weights for `arch` would be on this machine, attached to the kernel as a
        dataset; None where the kernel downloads them itself (which needs internet)."""

    @classmethod
    def solution(cls, config: Config, competition: str) -> Path | None:
        """Where the competition's hidden labels (solution.csv) would be on this machine, for scoring runs;
        None where they never reach us."""

    @classmethod
    def known_username(cls, config: Config) -> str | None:
        """The account's username where it can be read without connecting (a dry run renders with it);
        None where only the backend can say."""

    def push(self, folder: Path, session_timeout_s: int | None = None) -> PushResult:
        """Start the kernel in `folder` as a new version of its slug, ended after `session_timeout_s` of run time
        in all (default: the configured session_timeout_s)."""

    def find_pushed(self, slug: str, after: int | None) -> PushResult | None:
        """The newest version of `slug` when it is newer than version `after` (None: any version): a push cut
        off before the registry recorded it may still have started one, and pushing again would start a
        second. Version numbers, not clocks: this machine's and the backend's need not agree."""

    def remove_shell(self, slug: str) -> bool:
        """Delete this account's kernel `slug` if it has no version at all (the empty kernel a refused first
        push can leave, which refuses every later push); True when no such kernel stands in the way."""

    def scored_by_server(self, competition: str) -> bool:
        """Whether the competition's data ships a `kaggle_evaluation/` package: its reruns are scored by an
        inference server the notebook must serve, not by a submission.csv."""

    def status(self, slug: str, version: int) -> KernelState:
        """State of that exact version (and the version it was resubmitted as, where the backend did that)."""

    def output(self, slug: str, version: int, dest: Path, names: tuple[str, ...]) -> list[Path]:
        """Download the named output files of that version into `dest`."""

    def logs(self, slug: str, version: int) -> str:
        """The kernel's log as text, as far as it has got (a running version's too, where the backend has it)."""

    def follow(self, slug: str, version: int) -> Iterator[str]:
        """The kernel's log as it grows, piece by piece, until the version has ended (all of it at once for
        one that already has)."""

    def stop(self, slug: str, version: int) -> KernelState:
        """Stop a queued or running version; a BackendError saying how, where `can_stop` is false."""

    def submit(self, competition: str, file: Path, message: str,
               slug: str | None = None, version: int | None = None) -> SubmissionResult:
        """Submit a file (or, for code competitions, the kernel version that writes it)."""

    def submission(self, competition: str, ref: str) -> SubmissionResult:
        """Current state of a submission."""

    def find_submission(self, competition: str, message: str, since: float) -> SubmissionResult | None:
        """A submission with this exact description made at or after `since`: a submit cut off before the
        registry recorded it may have reached the backend."""

    def allowance(self, competition: str) -> Allowance | None:
        """The competition's submissions left today, where the backend limits them (None: no limit, or none known)."""

    def quota(self) -> Quota | None:
        """GPU hours used, reserved and allowed, where the backend has a quota."""

    def dataset(self, slug: str) -> DatasetState | None:
        """This account's dataset `slug` as its kernels would attach it now; None where there is none."""

    def upload_dataset(self, folder: Path, new: bool, notes: str) -> None:
        """Upload a laid-out dataset folder (kernel.datasets) as a new dataset, or as a new version of the existing
        one; private unless the configuration says otherwise. Returns once the backend has taken it (it may still
        be processing it: `dataset` says when it is READY)."""
