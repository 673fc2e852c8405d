"""Typed errors: each carries a message a user can act on and, where useful, a hint."""


class ToolkitError(Exception):
    """An error the user can fix. The CLI prints it as one line and exits non-zero."""

    exit_code = 2

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(ToolkitError):
    """toolkit.toml, an environment variable or a flag has a bad value."""


class SpecError(ToolkitError):
    """A run specification (arch, transforms, numbers) is invalid."""


class CompetitionError(ToolkitError):
    """A competition folder is missing or not in the expected shape."""


class RunTooLong(ToolkitError):
    """A run's estimate alone is past the session length planned: its session would be stopped with no outputs."""


class RunNotFound(ToolkitError):
    """No run in the store matches what the user named."""


class StoreError(ToolkitError):
    """The run registry refused a change (for example an illegal status transition)."""


class BackendError(ToolkitError):
    """A backend call failed in a way the user should know about."""


class NotConfigured(BackendError):
    """The chosen backend cannot be used until it is set up."""


class HttpError(BackendError):
    """The backend's API answered a call with an HTTP error; `status` is its code (404: no such thing,
    429: rate-limited, 5xx: trouble on its side), for callers that act on one code."""

    def __init__(self, message: str, hint: str = "", status: int = 0):
        super().__init__(message, hint)
        self.status = status


class UnsafeOutput(ToolkitError):
    """A downloaded output is not plain data, escapes its folder, or is too large."""


class OutputsBroken(UnsafeOutput):
    """A finished kernel's outputs break the output contract (a file missing, a key missing or malformed): the
    kernel's doing, so the run is recorded as failed rather than downloaded again."""


class EnsembleError(ToolkitError):
    """Ensemble members cannot be combined (different test files or classes)."""


class WaitTimeout(ToolkitError):
    """A wait ran past its deadline before the kernels finished."""


class SlotsFull(BackendError):
    """Kaggle refused a push because a batch (GPU or CPU) session limit is reached; the run waits."""


class QuotaExhausted(BackendError):
    """Kaggle refused a push because the weekly GPU quota is used up: final until the quota refreshes."""


class SubmissionLimitReached(BackendError):
    """The competition takes no more submissions today (its daily limit, UTC) or at all (its lifetime cap)."""


class KernelNotFound(BackendError):
    """Kaggle has no such kernel for this account (it answers 403 alike for missing and foreign kernels)."""


class NotebookNotFound(BackendError):
    """Kaggle refused a push with "Notebook not found": for a slug this account never got a version of, the
    empty kernel a refused first push left behind (see schedule.push_run)."""


class LogStreamFailed(HttpError):
    """Kaggle's log stream of a kernel version answered an HTTP error: the log, not the run, failed."""


class DownloadFailed(BackendError):
    """A file of a kernel's outputs could not be downloaded (its signed link refused or expired)."""


class DatasetRefused(BackendError):
    """The backend did not take a dataset (its refusal in its own words), or never made it ready to attach."""
