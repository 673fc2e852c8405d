"""The local backend: runs kernel folders on this machine in Kaggle's directory layout.

Each pushed version lives in `.toolkit/local/kernels/<slug>/v<N>/`:
  kernel/       the folder as pushed      input/<source>  competition, datasets, kernel outputs (links)
  working/      the kernel's cwd, outputs  state.json      status, pid, failure message
  log.txt       everything it printed      executed.ipynb  the notebook with its outputs
Kernels run in detached child processes, so they outlive the command that pushed them;
at most `concurrency` run at once and the rest wait in order, as QUEUED. Code competition reruns
(see rerun.py) are sandboxes of the same shape in `.toolkit/local/reruns/<slug>/<ref>/`, in the same queue.

This module is the Backend protocol over the others: paths (where things are), queue (state.json, the
lock, starting and stopping), inputs and sandbox (laying a version out), leaderboard (submissions).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

from toolkit.backends.base import Allowance, DatasetState, KernelState, PushResult, Quota, SubmissionResult
from toolkit.backends.local import leaderboard, paths, queue, sandbox
from toolkit.backends.local.inputs import check_in_place, folder_dataset, resolve_sources
from toolkit.backends.local.queue import CREDENTIAL_VARS, finish
from toolkit.backends.local.sandbox import KAGGLE_IMAGE, KAGGLE_SITE
from toolkit.core.config import Config
from toolkit.core.status import Status, SubmissionStatus
from toolkit.specs.spec import check_slug

__all__ = ["CREDENTIAL_VARS", "KAGGLE_IMAGE", "KAGGLE_SITE", "WEIGHTS_DATASET", "LocalBackend", "finish"]

FOLLOW_POLL_S = 0.5  # how often `klogs --follow` looks at a running kernel's log
WEIGHTS_DATASET = "timm-weights"  # datasets/<this>/<arch>.pth: a timm state dict per architecture


class LocalBackend:
    name = "local"
    queues = True  # accepts every push and starts queued kernels itself as slots free
    can_stop = True
    runs_here = True
    uploads_datasets = False  # kernels mount the folders of datasets_root as they are
    poll_s = (1.0, 5.0)  # its state is a file away: check often

    # Competitions, pretrained weights and hidden labels are folders on this machine.
    @classmethod
    def competitions_root(cls, config: Config) -> Path | None:
        return config.resolve(config.competitions_root)

    @classmethod
    def weights_file(cls, config: Config, arch: str) -> Path | None:
        return config.resolve(config.datasets_root) / WEIGHTS_DATASET / f"{arch}.pth"

    @classmethod
    def solution(cls, config: Config, competition: str) -> Path | None:
        return config.resolve(config.competitions_root) / competition / "solution.csv"

    @classmethod
    def known_username(cls, config: Config) -> str | None:
        return paths.username(config)

    def __init__(self, config: Config):
        self.config = config
        self.username = paths.username(config)
        self.root = paths.root(config)
        self.kernels = self.root / "kernels"
        self.reruns = self.root / "reruns"  # code competition reruns: <slug>/<submission ref>/
        self.kernels.mkdir(parents=True, exist_ok=True)

    # -- push ---------------------------------------------------------------------------------

    def push(self, folder: Path, session_timeout_s: int | None = None) -> PushResult:
        """Queue the kernel in `folder` as a new version; it ends in ERROR once it has run for
        `session_timeout_s` in all (default: the configured limit), as a Kaggle session does."""
        meta = json.loads((folder / "kernel-metadata.json").read_text())
        slug = check_slug(meta["id"].split("/", 1)[1])
        inputs = resolve_sources(self.config, meta)
        with queue.locked(self.root):
            sandbox.remove_unfinished(self.root, slug)
            version, run_dir = sandbox.new_version(self.root, slug)
            # inputs: what a code competition rerun of this version attaches again.
            sandbox.lay_out(self.config, run_dir, folder, inputs, sandbox.internet_enabled(meta), {
                "code_file": meta["code_file"], "inputs": {m: str(p.resolve()) for m, p in inputs.items()},
                "session_timeout_s": session_timeout_s or self.config.session_timeout_s})
        queue.dispatch(self.config)
        return PushResult(version=version, url=run_dir.resolve().as_uri())

    def find_pushed(self, slug: str, after: int | None) -> PushResult | None:
        """The newest version of `slug` when it is newer than `after` (to reconcile a push cut off before the
        store recorded it), or None. A version is one whose state.json was written (see push)."""
        with queue.locked(self.root):
            made = sandbox.versions_made(self.root, slug)
        if not made or made[-1] <= (after or 0):
            return None
        return PushResult(version=made[-1], url=paths.version_dir(self.root, slug, made[-1]).resolve().as_uri())

    def remove_shell(self, slug: str) -> bool:
        """A refused push leaves nothing here: nothing stands in the way unless versions exist."""
        return not paths.versions(self.root, slug)

    def scored_by_server(self, competition: str) -> bool:
        root = self.config.resolve(self.config.competitions_root) / competition
        return (root / "kaggle_evaluation").is_dir()

    # -- status, outputs, logs ----------------------------------------------------------------

    def dispatch(self) -> None:
        """Mark dead runners as failed and start queued kernels, oldest first, up to the limit."""
        queue.dispatch(self.config)

    def status(self, slug: str, version: int) -> KernelState:
        return _kernel_state(queue.current_state(self.config, paths.existing_version(self.config, slug, version)))

    def output(self, slug: str, version: int, dest: Path, names: tuple[str, ...]) -> list[Path]:
        run_dir = paths.existing_version(self.config, slug, version)
        return sandbox.copy_outputs(run_dir / "working", dest, names, self.config.max_output_mb * 2**20)

    def logs(self, slug: str, version: int) -> str:
        log = paths.existing_version(self.config, slug, version) / "log.txt"
        return log.read_text(errors="replace") if log.exists() else ""

    def follow(self, slug: str, version: int) -> Iterator[str]:
        """The log as the runner writes it (each printed line as it comes), until the version has ended."""
        log = paths.existing_version(self.config, slug, version) / "log.txt"
        done = 0
        while True:
            ended = self.status(slug, version).status.terminal  # read before the log: nothing written is missed
            text = _read_from(log, done)
            if text:
                done += len(text.encode())
                yield text
            elif ended:
                return
            else:
                time.sleep(FOLLOW_POLL_S)

    def stop(self, slug: str, version: int) -> KernelState:
        """Stop a queued or running version (kstop); a version that already ended is left as it is."""
        return _kernel_state(queue.stop(self.config, paths.existing_version(self.config, slug, version)))

    # -- submissions --------------------------------------------------------------------------

    def submit(self, competition: str, file: Path, message: str,
               slug: str | None = None, version: int | None = None) -> SubmissionResult:
        """Score against the competition's solution.csv, which makes a small local leaderboard. In a code
        competition (one with hidden_test/) the kernel version is rerun on the hidden test set instead and
        the submission stays PENDING until that rerun has been scored (see rerun.py)."""
        return self.submission(competition, leaderboard.submit(self.config, competition, file, message, slug, version))

    def submission(self, competition: str, ref: str) -> SubmissionResult:
        entry = leaderboard.current(self.config, competition, ref)
        return SubmissionResult(ref=entry["ref"], status=SubmissionStatus(entry["status"]), score=entry["score"],
                                error=entry["error"])

    def submission_log(self, competition: str, ref: str) -> str:
        """What a code competition submission's rerun printed ("" for a file submission)."""
        return leaderboard.rerun_log(self.root, competition, ref)

    def find_submission(self, competition: str, message: str, since: float) -> SubmissionResult | None:
        """A submission with this description made at or after `since` (for a submit that was cut off)."""
        ref = leaderboard.find_ref(self.root, competition, message, since)
        return self.submission(competition, ref) if ref is not None else None

    def allowance(self, competition: str) -> Allowance | None:
        return None  # the local leaderboard scores every submission

    def quota(self) -> Quota | None:
        return None

    # -- datasets: the folders of datasets_root, mounted as they are ---------------------------------------------

    def dataset(self, slug: str) -> DatasetState | None:
        return folder_dataset(self.config, slug)

    def upload_dataset(self, folder: Path, new: bool, notes: str) -> None:
        check_in_place(self.config, folder)


def _read_from(log: Path, offset: int) -> str:
    """What the log holds past `offset` bytes (up to its last complete line), "" when nothing more."""
    if not log.exists():
        return ""
    with open(log, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    complete = data[: data.rfind(b"\n") + 1]
    return complete.decode(errors="replace")


def _kernel_state(state: dict) -> KernelState:
    return KernelState(Status(state["status"]), state.get("failure_message", ""))
