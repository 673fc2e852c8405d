"""The Kaggle backend: every call goes through the official client (kaggle 2.2.5, `KaggleApi`).

The client is imported here only, lazily: `import kaggle` authenticates at import time and
may print help or exit, so nothing else in the toolkit needs credentials to start.
Where the client falls short (no retries on status/output, push errors returned in a field,
401/403 turned into misleading ValueErrors) this module fills the gap, see the comments; its
failures become typed errors in kaggle_errors.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from toolkit.backends.base import (Allowance, DatasetState, KernelState, PushResult, Quota, SubmissionResult,
                                   check_allowance)
from toolkit.backends.kaggle import datasets
from toolkit.backends.kaggle.credentials import authenticate, offline_username
from toolkit.backends.kaggle.errors import calling, http_code, passing, translate
from toolkit.backends.kaggle.replies import epoch_seconds, hours, log_text, names_pattern, submission_result, within
from toolkit.core.config import Config
from toolkit.core.errors import (BackendError, DownloadFailed, HttpError, KernelNotFound, NotConfigured,
                                 NotebookNotFound, QuotaExhausted, SlotsFull, ToolkitError, UnsafeOutput)
from toolkit.core.status import Status, SubmissionStatus

# Push refusals come in SaveKernelResponse.error, in Kaggle's words. Session limits, per kind of machine:
# "Maximum batch GPU session count of 4 reached" (Kaggle/kaggle-cli#185) and, for CPU kernels such as the
# ensemble, "Maximum batch CPU session count of 5 reached" (as public push logs quote it). A slot frees
# when a session ends, so the run waits.
SLOTS_FULL = re.compile(r"Maximum batch (?:GPU|CPU) session count")
# "Maximum weekly GPU quota of 30.00 hours reached." (verbatim in public push logs; the web UI's "Accelerator
# Quota Exceeded ... You will not be able to commit unless you turn off GPU", Kaggle/kaggle-benchmarks#79).
# Final until quotaRefreshTime: waiting minutes is no use.
QUOTA_EXHAUSTED = re.compile(r"Maximum weekly \w+ quota")
# What Kaggle answers a push to a slug it cannot version: someone else's kernel, or (public push logs, 2026)
# the empty kernel that a first push refused for a session limit or the quota leaves behind.
NOT_FOUND = "Notebook not found"
READ_ATTEMPTS = 3  # idempotent reads also survive a 5xx (the client only retries 429 and dropped connections)
CLIENT_RETRIES = 5
FOLLOW_RECONNECTS = 5  # connections to the log stream that bring nothing new before a follow gives up
MAX_PAGES = 50  # pages of a competition's root listing read at most (200 entries each)
WEIGHTS_DATASET = "timm-weights"  # this machine's weights: datasets/<this>/<arch>.pth, as the local backend keeps them


class KaggleBackend:
    name = "kaggle"
    queues = False  # Kaggle refuses pushes past its session limit; schedule.push_waiting holds runs back instead
    can_stop = False  # no cancel call: its web UI stops kernels
    runs_here = False
    poll_s = None  # the configured intervals: Kaggle's API asks for 30 s or more between polls
    uploads_datasets = True  # members trained elsewhere and offline kernels' weights: private datasets of the user's

    # Competitions and hidden labels live on Kaggle.
    @classmethod
    def competitions_root(cls, config: Config) -> Path | None:
        return None

    @classmethod
    def weights_file(cls, config: Config, arch: str) -> Path | None:
        """With internet, timm downloads the weights in the kernel (None); without, only this machine's file can
        reach it, uploaded as a dataset of the user's (runs.plan, runs.datasets)."""
        return None if config.internet else config.resolve(config.datasets_root) / WEIGHTS_DATASET / f"{arch}.pth"

    @classmethod
    def solution(cls, config: Config, competition: str) -> Path | None:
        return None

    @classmethod
    def known_username(cls, config: Config) -> str | None:
        return offline_username()

    def __init__(self, config: Config, api: Any = None):
        self.config = config
        self.api = api or authenticate()
        self.username: str = self.api.get_config_value("username")
        if config.username and config.username != self.username:
            raise NotConfigured(f"username '{config.username}' in the configuration is not the Kaggle account of "
                                f"these credentials ('{self.username}')", "fix or remove `username`")

    def _ref(self, slug: str, version: int | None = None) -> str:
        return f"{self.username}/{slug}" + (f"/{version}" if version else "")

    def _read(self, what: str, func: Callable, *args: Any, kernel_ref: str | None = None, **kwargs: Any) -> Any:
        """An idempotent call: the client's with_retry (429 with Retry-After, dropped connections) plus 5xx.
        `kernel_ref` names the kernel the call is about (for a 403: not found or not yours)."""
        import requests

        with calling(what, kernel_ref):
            for attempt in range(1, READ_ATTEMPTS + 1):
                try:
                    return within(self.config.api_timeout_s, what,
                                  self.api.with_retry(func, max_retries=CLIENT_RETRIES), *args, **kwargs)
                except requests.HTTPError as exc:
                    code = exc.response.status_code if exc.response is not None else 0
                    if code < 500 or attempt == READ_ATTEMPTS:
                        raise
                    time.sleep(attempt)

    # -- kernels ------------------------------------------------------------------------------

    def push(self, folder: Path, session_timeout_s: int | None = None) -> PushResult:
        meta = json.loads((Path(folder) / "kernel-metadata.json").read_text())
        # `acc` overrides the metadata, so pass it only to GPU kernels (never put a CPU ensemble on a GPU).
        acc = self.config.accelerator if meta.get("enable_gpu") or meta.get("machine_shape") else None
        with calling(f"pushing {folder.name}"), contextlib.redirect_stdout(io.StringIO()):
            # Not retried: a lost reply may still have started a version, and a retry would start another.
            resp = within(self.config.api_timeout_s, f"pushing {folder.name}", self.api.kernels_push, str(folder),
                          timeout=str(session_timeout_s or self.config.session_timeout_s), acc=acc)
        if resp.error:
            raise self._refusal(folder.name, " ".join(str(resp.error).split()))
        invalid = [*(resp.invalid_competition_sources or []), *(resp.invalid_kernel_sources or []),
                   *(resp.invalid_dataset_sources or []), *(resp.invalid_model_sources or [])]
        if invalid:
            raise BackendError(f"Kaggle started {folder.name} version {resp.version_number} without sources it "
                               f"does not know: {', '.join(invalid)}",
                               "join the competition (accept its rules) or fix the sources, then kpush --force")
        if not resp.version_number:
            raise BackendError(f"Kaggle accepted {folder.name} but returned no version number")
        return PushResult(version=int(resp.version_number), url=resp.url or "")

    def _refusal(self, name: str, error: str) -> BackendError:
        """The typed error for a push Kaggle refused; `error` is Kaggle's own line."""
        if SLOTS_FULL.search(error):
            return SlotsFull(f"Kaggle: {error}", "the run waits; kpull outputs pushes it when a slot frees")
        if QUOTA_EXHAUSTED.search(error):
            return QuotaExhausted(f"Kaggle refused the push of {name}: {error}", self._refresh_hint())
        if error.rstrip(".") == NOT_FOUND:
            return NotebookNotFound(f"Kaggle refused the push of {name}: {error}",
                                    "a kernel of that slug exists but cannot take a version: delete it on kaggle.com")
        return BackendError(f"Kaggle refused the push of {name}: {error}")

    def _refresh_hint(self) -> str:
        """When the weekly quota comes back, from the quota call; a failing call only makes the hint vaguer."""
        try:
            quota = self.quota()
        except ToolkitError:
            quota = None
        when = quota.refresh if quota is not None and quota.refresh else "at its weekly reset"
        return f"the GPU quota refreshes {when}; the run waits, and kstatus or kpull outputs pushes it after that"

    def find_pushed(self, slug: str, after: int | None) -> PushResult | None:
        """The newest version of `slug` when it is newer than `after` (None: any), or None: a push whose reply
        was lost may still have started a version, and schedule.push_run asks here before pushing again.

        One exact lookup (GetKernel, what `kernels_pull` uses, without writing files): its metadata carries
        the kernel's currentVersionNumber, compared with the last version the registry recorded (not
        lastRunTime, whose meaning for a version still queued is undocumented). Not ListKernels: that is a
        free-text search, whose index may not hold a kernel created moments ago."""
        try:
            kernel = self._read(f"looking up {slug} on Kaggle", self._get_kernel, slug)
        except HttpError as exc:
            # GetKernel answers 500 for the empty kernel a refused first push leaves (public push logs, 2026);
            # its status call says whether any version exists.
            if exc.status < 500 or self._has_version(slug):
                raise
            return None
        meta = kernel.metadata if kernel is not None else None
        current = int(meta.current_version_number or 0) if meta is not None else 0
        if not current or current <= (after or 0):
            return None
        return PushResult(version=current, url=f"https://www.kaggle.com/code/{self.username}/{slug}")

    def _has_version(self, slug: str) -> bool:
        """Whether `slug` has any version: the status of its latest session answers 404 when it has none."""
        try:
            self._read(f"status of {slug}", self.api.kernels_status, self._ref(slug), kernel_ref=self._ref(slug))
        except (HttpError, KernelNotFound) as exc:
            if isinstance(exc, KernelNotFound) or exc.status == 404:
                return False
            raise
        return True

    def remove_shell(self, slug: str) -> bool:
        """Delete this account's kernel `slug` when it has no version: a first push refused for a session limit
        or the weekly quota leaves such an empty kernel, and Kaggle then answers every push to that slug with
        "Notebook not found" until it is deleted (public push logs, 2026). A kernel with a version is never
        deleted. DeleteKernel (kaggle 2.2.5 kernels_delete, without its confirmation prompt) answers an
        errorMessage when it did not delete; False then, and schedule.push_run uses another slug."""
        from kagglesdk.kernels.types.kernels_api_service import ApiDeleteKernelRequest

        if self._has_version(slug):
            return False
        request = ApiDeleteKernelRequest()
        request.user_name, request.kernel_slug = self.username, slug

        def delete() -> Any:
            with self.api.build_kaggle_client() as kaggle:
                return kaggle.kernels.kernels_api_client.delete_kernel(request)

        try:
            with calling(f"deleting the empty kernel {self._ref(slug)}", self._ref(slug)):
                reply = within(self.config.api_timeout_s, f"deleting {slug}", delete)
        except KernelNotFound:  # no kernel of that slug at all
            return True
        except BackendError:
            return False
        return not (reply is not None and reply.error_message)

    def scored_by_server(self, competition: str) -> bool:
        """Whether the competition's files hold a `kaggle_evaluation/` folder at their root: the listing of the
        root (ListDataTreeFiles, a kagglesdk call the kaggle 2.2.5 client does not wrap; ListDataFiles lists
        every file, page by page, and public reports say it can stop short: Kaggle/kaggle-cli#511), page after
        page while it has a next_page_token (kagglesdk 0.1.38 ApiDirectoryContent; in what order is not said)."""
        from kagglesdk.competitions.types.competition_api_service import ApiListDataTreeFilesRequest

        def listing(token: str) -> Any:
            request = ApiListDataTreeFilesRequest()
            request.competition_name, request.path, request.page_size = competition, "", 200
            request.page_token = token
            with self.api.build_kaggle_client() as kaggle:
                return kaggle.competitions.competition_api_client.list_data_tree_files(request)

        token = ""
        for _ in range(MAX_PAGES):
            content = self._read(f"the files of {competition}", listing, token)
            if any(d.name == "kaggle_evaluation" for d in content.directories or []):
                return True
            token = content.next_page_token
            if not token:
                return False
        return False

    def _get_kernel(self, slug: str) -> Any:
        """GetKernel for this user's `slug`; None when Kaggle has no such kernel: 404, or 403 (Permission
        'kernels.get' was denied), which the client's own hint puts down to a wrong slug first."""
        import requests
        from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelRequest

        request = ApiGetKernelRequest()
        request.user_name = self.username
        request.kernel_slug = slug
        with self.api.build_kaggle_client() as kaggle:
            try:
                return kaggle.kernels.kernels_api_client.get_kernel(request)
            except requests.HTTPError as exc:
                if http_code(exc) in (403, 404):
                    return None
                raise

    def status(self, slug: str, version: int) -> KernelState:
        resp = self._read(f"status of {slug} v{version}", self.api.kernels_status, self._ref(slug, version),
                          kernel_ref=self._ref(slug))
        name = resp.status.name if resp.status is not None else "QUEUED"
        status = Status.QUEUED if name == "NEW_SCRIPT" else Status[name]
        return KernelState(status, resp.failure_message or "")

    def output(self, slug: str, version: int, dest: Path, names: tuple[str, ...]) -> list[Path]:
        """Download the named outputs. Each file comes from a signed link in the listing; a link refused
        (HTTP 403, as an expired one is) is retried once with a fresh listing, whose links are new."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for attempt in (1, 2):
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    files, _ = self._read(f"downloading outputs of {slug} v{version}", self.api.kernels_output,
                                          self._ref(slug, version), str(dest), file_pattern=names_pattern(names),
                                          page_size=200, force=True, quiet=True, kernel_ref=self._ref(slug))
                return self._checked(dest, files, names, slug)
            except DownloadFailed as exc:
                if attempt == 2:
                    raise DownloadFailed(f"downloading the outputs of {slug} v{version} failed twice: {exc.message}",
                                         "the outputs stay on Kaggle: run the command again later") from None
        raise AssertionError("unreachable")

    def _checked(self, dest: Path, files: list[str], names: tuple[str, ...], slug: str) -> list[Path]:
        """Keep the named files; refuse any that escaped `dest` or are too large."""
        root, limit, kept = dest.resolve(), self.config.max_output_mb * 2**20, []
        for name in files:
            path = Path(name).resolve()
            if root not in path.parents:
                raise UnsafeOutput(f"output '{name}' lies outside {dest} and was refused")
            relative = path.relative_to(root).as_posix()
            if relative not in names:
                if relative == f"{slug}.log":  # the client writes the log too; logs() fetches it on demand
                    path.unlink(missing_ok=True)
                continue
            if path.stat().st_size > limit:
                path.unlink()
                raise UnsafeOutput(f"output '{relative}' is over the {self.config.max_output_mb} MB limit",
                                   "raise max_output_mb in toolkit.toml if this is expected")
            kept.append(path)
        return kept

    def logs(self, slug: str, version: int) -> str:
        raw = self._read(f"log of {slug} v{version}", self.api.kernels_logs, self._ref(slug, version),
                         kernel_ref=self._ref(slug))
        return log_text(raw)

    def follow(self, slug: str, version: int) -> Iterator[str]:
        """The log through Kaggle's log stream (kaggle 2.2.5 kernels_logs_stream: server-sent events while the
        session runs, the stored log once it has ended). A dropped connection, a 429 or a 5xx opens it again; the
        server replays the stream from its start, so the events already passed on are skipped, as its CLI does.
        A stream that keeps failing is a LogStreamFailed naming this version (errors.translate)."""
        what, seen, idle = f"following the log of {slug} v{version}", 0, 0
        while True:
            before = seen
            try:
                for index, event in enumerate(self.api.kernels_logs_stream(self._ref(slug, version))):
                    if index >= seen:
                        seen = index + 1
                        if event.get("data"):
                            yield str(event["data"])
                return
            except Exception as exc:
                idle = 0 if seen > before else idle + 1
                if not passing(exc) or idle >= FOLLOW_RECONNECTS:
                    raise translate(exc, what, self._ref(slug)) from None
                time.sleep(1)

    def stop(self, slug: str, version: int) -> KernelState:
        raise BackendError("Kaggle has no cancel call: stop running kernels in its web UI",
                           f"open https://www.kaggle.com/code/{self.username}/{slug}")

    # -- submissions --------------------------------------------------------------------------

    def submit(self, competition: str, file: Path, message: str,
               slug: str | None = None, version: int | None = None) -> SubmissionResult:
        """Submit once. A refusal is put down to the daily limit when the limits then say none are left: how
        Kaggle refuses one past it is not documented (a limit-reached submit once read as a success,
        Kaggle/kaggle-cli#148; a bare 400 in floydwch/kaggle-cli#61, 2017)."""
        try:
            with calling(f"submitting to {competition}"), contextlib.redirect_stdout(io.StringIO()):
                limit, what = self.config.api_timeout_s, f"submitting to {competition}"
                if slug and version:
                    resp = within(limit, what, self.api.competition_submit_code, file_name=Path(file).name,
                                  message=message, competition=competition, kernel=self._ref(slug),
                                  kernel_version=version, quiet=True)
                else:
                    resp = within(limit, what, self.api.competition_submit, str(file), message, competition,
                                  quiet=True)
        except HttpError:
            check_allowance(self, competition)
            raise
        if not resp.ref:
            check_allowance(self, competition)
            raise BackendError(f"Kaggle did not accept the submission to {competition}: "
                               f"{resp.message or 'no reason given'}", "run ksubmit ensemble again")
        return SubmissionResult(ref=str(resp.ref), status=SubmissionStatus.PENDING)

    def allowance(self, competition: str) -> Allowance | None:
        """GetSubmissionLimits (kaggle 2.2.5 competition_get_submission_limits). All zeros is "not on a team
        yet" (kagglesdk 0.1.38's docstring), not a limit: None then, and when the call fails (the client's own
        submit never fails over it either)."""
        try:
            got = self._read(f"the submission limits of {competition}", self.api.competition_get_submission_limits,
                             competition)
        except ToolkitError:
            return None
        if not (got.num_allowed_now or got.num_today or got.num_total or got.limited_by_total):
            return None
        return Allowance(got.num_allowed_now, got.num_today, got.num_total, bool(got.limited_by_total))

    def submission(self, competition: str, ref: str) -> SubmissionResult:
        try:
            sub = self._read(f"submission {ref}", self.api.get_submission, int(ref))
        except HttpError as exc:
            if exc.status != 404:
                raise
            # Just after submitting the single lookup may not know the ref yet: look in the list.
            listed = self._read(f"submissions of {competition}", self.api.competition_submissions, competition)
            sub = next((s for s in listed or [] if s and str(s.ref) == str(ref)), None)
            if sub is None:
                return SubmissionResult(ref=str(ref), status=SubmissionStatus.PENDING)
        return submission_result(sub, ref)

    def find_submission(self, competition: str, message: str, since: float) -> SubmissionResult | None:
        """A submission with this exact description made at or after `since`: a submit whose reply was
        lost may have reached Kaggle, and submit.py asks here before submitting again."""
        listed = self._read(f"submissions of {competition}", self.api.competition_submissions, competition)
        for sub in listed or []:
            # Whole seconds: Kaggle's dates may carry less precision than our clock.
            if sub and sub.description == message and sub.date and epoch_seconds(sub.date) >= int(since):
                return submission_result(sub, str(sub.ref))
        return None

    def dataset(self, slug: str) -> DatasetState | None:
        return datasets.state(self, slug)

    def upload_dataset(self, folder: Path, new: bool, notes: str) -> None:
        datasets.upload(self, folder, new, notes)

    def quota(self) -> Quota | None:
        resp = self._read("GPU quota", self.api.quota_view)
        gpu = resp.gpu_quota
        if gpu is None:
            return None
        # timeReserved: "Quota reserved by currently-running sessions" (kagglesdk 0.1.38 ApiAcceleratorQuota).
        return Quota(used_hours=hours(gpu.time_used), allowed_hours=hours(gpu.total_time_allowed),
                     reserved_hours=hours(gpu.time_reserved),
                     refresh_at=epoch_seconds(resp.quota_refresh_time) if resp.quota_refresh_time else None)
