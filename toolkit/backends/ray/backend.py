"""The ray backend: each pushed version is one Ray job that runs the rendered notebook unchanged, in the same
Kaggle-layout sandbox the local backend builds, under a path every node shares (paths.py). The job asks for the
GPUs the kernel trains on and CPUs to match; Ray queues what does not fit, and a request no node can meet is
refused here instead of waiting forever.

Ray retries no job (ray-project/ray#64104: "retries are handled by the submitter"), so this backend does: a job
the cluster lost after its runner started (the driver killed, its node gone) is resubmitted once, as the next
version of the kernel, and its state says so (KernelState.moved_to). A kernel that fails on its own code is
ERROR, as elsewhere: the runner recorded that in the sandbox's state.json, which outranks the job's status.

Submissions are scored on the project's local leaderboard where the competition folder has the hidden labels,
and otherwise sent to Kaggle through the official client (credentials needed).
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

from toolkit.backends.base import Allowance, DatasetState, KernelState, PushResult, Quota, SubmissionResult
from toolkit.backends.local import leaderboard, sandbox
from toolkit.backends.local import paths as local_paths
from toolkit.backends.local.inputs import check_in_place, folder_dataset, resolve_sources
from toolkit.backends.local.queue import locked, read_state, write_state
from toolkit.backends.ray import jobs, paths
from toolkit.backends.ray.cluster import Cluster, Job
from toolkit.core.config import Config
from toolkit.core.errors import BackendError
from toolkit.core.status import Status, SubmissionStatus
from toolkit.specs.spec import check_slug

WEIGHTS_DATASET = "timm-weights"  # datasets/<this>/<arch>.pth, as the local backend attaches them
STOPPED = "stopped by the user"
JOB_STATES = {"PENDING": Status.QUEUED, "RUNNING": Status.RUNNING}
# What Ray's job manager writes into a job's log before the entrypoint's own lines.
RAY_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\t[A-Z]+ job_manager\.py:\d+ -- |Running entrypoint for job ")


class RayBackend:
    name = "ray"
    queues = True  # Ray queues every job until a node has what it asks for
    can_stop = True
    runs_here = False  # on the cluster's nodes, with their own GPUs
    uploads_datasets = False  # datasets_root (on the shared path) is mounted as it is
    poll_s = (2.0, 10.0)  # one HTTP call to the job server per version

    @classmethod
    def competitions_root(cls, config: Config) -> Path | None:
        return paths.data_root(config)

    @classmethod
    def weights_file(cls, config: Config, arch: str) -> Path | None:
        """The local backend's file where there is one (datasets_root: on the shared path); else, with internet,
        timm downloads them in the kernel, as on Kaggle (a cluster's nodes usually reach the network)."""
        file = config.resolve(config.datasets_root) / WEIGHTS_DATASET / f"{arch}.pth"
        return file if file.is_file() or not config.internet else None

    @classmethod
    def solution(cls, config: Config, competition: str) -> Path | None:
        return paths.data_root(config) / competition / "solution.csv"

    @classmethod
    def known_username(cls, config: Config) -> str | None:
        return paths.username(config)

    def __init__(self, config: Config):
        self.config = config
        self.username = paths.username(config)
        self.root = paths.root(config)
        self.cluster = Cluster(config)  # connects on its first call
        (self.root / "kernels").mkdir(parents=True, exist_ok=True)

    # -- push ---------------------------------------------------------------------------------

    def push(self, folder: Path, session_timeout_s: int | None = None) -> PushResult:
        """Lay the version out in the shared folder and submit its job, once some node can run it."""
        meta = json.loads((folder / "kernel-metadata.json").read_text())
        slug = check_slug(meta["id"].split("/", 1)[1])
        asked = jobs.ask(meta, json.loads((folder / meta["code_file"]).read_text()), self.config.ray.cpus_per_gpu)
        if not self.config.ray.autoscaling:
            nodes = self.cluster.nodes()
            if not jobs.fits(asked, nodes):
                raise jobs.refusal(slug, asked, nodes, self.cluster.address)
        inputs = resolve_sources(paths.sandbox_config(self.config), meta, self.root)
        with locked(self.root):
            sandbox.remove_unfinished(self.root, slug)
            version, run_dir = self._lay_out(slug, folder, inputs, sandbox.internet_enabled(meta), {
                "ray_ask": asdict(asked), "session_timeout_s": session_timeout_s or self.config.session_timeout_s})
        self._submit(run_dir)
        return PushResult(version, self._url(read_state(run_dir)))

    def _lay_out(self, slug: str, kernel: Path, inputs: dict[str, Path], internet: bool,
                 state: dict) -> tuple[int, Path]:
        """A new version's sandbox, its job named (the caller holds the lock)."""
        version, run_dir = sandbox.new_version(self.root, slug)
        meta = json.loads((kernel / "kernel-metadata.json").read_text())
        sandbox.lay_out(paths.sandbox_config(self.config), run_dir, kernel, inputs, internet, {
            "code_file": meta["code_file"], "inputs": {m: str(p.resolve()) for m, p in inputs.items()},
            "internet": internet, "ray_job": jobs.new_job_id(slug, version), **state})
        return version, run_dir

    def _submit(self, run_dir: Path) -> None:
        state = read_state(run_dir)
        python = self.config.ray.python or sys.executable
        self.cluster.submit(state["ray_job"], jobs.entrypoint(python, run_dir, state["session_timeout_s"]),
                            state["ray_ask"]["gpus"], state["ray_ask"]["cpus"],
                            {"toolkit_kernel": run_dir.parent.name, "toolkit_version": run_dir.name[1:]})

    def _url(self, state: dict) -> str:
        return f"{self.cluster.address}/#/jobs/{state['ray_job']}"

    def find_pushed(self, slug: str, after: int | None) -> PushResult | None:
        """The newest version of `slug` when it is newer than `after` (a push cut off before the store recorded
        it); its job is submitted on its first status call if the cut came before that."""
        with locked(self.root):
            made = sandbox.versions_made(self.root, slug)
        if not made or made[-1] <= (after or 0):
            return None
        return PushResult(made[-1], self._url(read_state(local_paths.version_dir(self.root, slug, made[-1]))))

    def remove_shell(self, slug: str) -> bool:
        return not local_paths.versions(self.root, slug)

    def scored_by_server(self, competition: str) -> bool:
        return (paths.data_root(self.config) / competition / "kaggle_evaluation").is_dir()

    # -- status -------------------------------------------------------------------------------

    def status(self, slug: str, version: int) -> KernelState:
        """The runner's recorded end, else the job's state; a job that ended without the runner's result was
        lost (resubmitted once) or failed before the kernel started."""
        run_dir = paths.existing_version(self.config, slug, version)
        state = read_state(run_dir)
        if state.get("resubmitted_as") or _ended(state):
            return self._recorded(slug, state)
        job = self.cluster.job(state["ray_job"])
        state = read_state(run_dir)  # the runner may have recorded its end since
        if _ended(state):
            return self._recorded(slug, state)
        if job.status in JOB_STATES:
            return KernelState(JOB_STATES[job.status], state.get("note", ""))
        if not job.status and not jobs.lost(state, job):  # never submitted (a push cut off), or forgotten unstarted
            self._submit(run_dir)
            return KernelState(Status.QUEUED, state.get("note", ""))
        return self._ended_without_result(slug, version, run_dir, job)

    def _recorded(self, slug: str, state: dict) -> KernelState:
        moved = state.get("resubmitted_as")
        if moved:
            moved_state = read_state(local_paths.version_dir(self.root, slug, moved))
            return KernelState(Status(state["status"]), state["failure_message"],
                               PushResult(moved, self._url(moved_state)))
        return KernelState(Status(state["status"]), state.get("failure_message", ""))

    def _ended_without_result(self, slug: str, version: int, run_dir: Path, job: Job) -> KernelState:
        """Record what the job's end means: stopped on the cluster, lost (resubmitted once), or failed before
        the kernel started. Under the lock, so two commands resubmit a version once."""
        with locked(self.root):
            state = read_state(run_dir)
            moved = None
            if not (_ended(state) or state.get("resubmitted_as")):
                moved = self._settle(slug, version, run_dir, state, job)
        if moved is not None:
            self._submit(moved)
        return self._recorded(slug, read_state(run_dir))

    def _settle(self, slug: str, version: int, run_dir: Path, state: dict, job: Job) -> Path | None:
        """The caller holds the lock. Returns the new version's sandbox when this one is resubmitted."""
        why = jobs.why(job)
        ending = jobs.ending(state, job, why)
        if ending is not None:
            _end(run_dir, state, *ending)
            return None
        moved, moved_dir = self._lay_out(slug, run_dir / "kernel", {m: Path(p) for m, p in state["inputs"].items()},
                                         state["internet"], {"ray_ask": state["ray_ask"], "resubmission_of": version,
                                                             "session_timeout_s": state["session_timeout_s"]})
        note = f"version {version} was lost to the cluster ({why}): resubmitted as version {moved}"
        write_state(moved_dir, {**read_state(moved_dir), "note": note})  # its status says so while it runs
        _end(run_dir, state, Status.ERROR, note, resubmitted_as=moved)
        return moved_dir

    # -- outputs, logs, stop ------------------------------------------------------------------

    def output(self, slug: str, version: int, dest: Path, names: tuple[str, ...]) -> list[Path]:
        run_dir = paths.existing_version(self.config, slug, version)
        return sandbox.copy_outputs(run_dir / "working", dest, names, self.config.max_output_mb * 2**20)

    def logs(self, slug: str, version: int) -> str:
        """The job's log (what the runner printed), or the sandbox's copy when the cluster has forgotten the job."""
        run_dir = paths.existing_version(self.config, slug, version)
        job_id = read_state(run_dir)["ray_job"]
        if self.cluster.job(job_id).status:
            return _own_lines(self.cluster.logs(job_id))
        log = run_dir / "log.txt"
        return log.read_text(errors="replace") if log.exists() else ""

    def follow(self, slug: str, version: int) -> Iterator[str]:
        """The job's log as it grows, through Ray's log stream; a version the cluster lost goes on in the
        version it was resubmitted as."""
        run_dir = paths.existing_version(self.config, slug, version)
        for piece in self.cluster.tail(read_state(run_dir)["ray_job"]):
            text = _own_lines(piece)
            if text:
                yield text
        state = self.status(slug, version)
        if state.moved_to is not None:
            yield f"\n{state.failure_message}\n"
            yield from self.follow(slug, state.moved_to.version)

    def stop(self, slug: str, version: int) -> KernelState:
        """Stop the job (Ray ends its entrypoint, which takes the notebook's kernel down) and record it as
        stopped by the user; a version that already ended is left as it is."""
        run_dir = paths.existing_version(self.config, slug, version)
        state = read_state(run_dir)
        if state.get("resubmitted_as"):
            return self.stop(slug, state["resubmitted_as"])
        if not _ended(state):
            self.cluster.stop(state["ray_job"])
            with locked(self.root):
                state = read_state(run_dir)
                if not _ended(state):
                    _end(run_dir, state, Status.CANCEL_ACKNOWLEDGED, STOPPED)
        return self._recorded(slug, read_state(run_dir))

    # -- submissions --------------------------------------------------------------------------

    def submit(self, competition: str, file: Path, message: str,
               slug: str | None = None, version: int | None = None) -> SubmissionResult:
        """A file: scored on the local leaderboard where the competition has its solution.csv, else submitted
        to Kaggle. Code competitions rerun notebooks on Kaggle's hidden test set, not on the cluster."""
        if slug or self._hidden_test(competition):
            raise BackendError(f"{competition} is a code competition: the ray backend submits files only",
                               "train and submit it with --backend kaggle (or local, which reruns it here)")
        if self._scored_here(competition):
            return self.submission(competition, leaderboard.submit(self._board(), competition, file, message))
        return self._kaggle().submit(competition, file, message)

    def submission(self, competition: str, ref: str) -> SubmissionResult:
        if not self._scored_here(competition):
            return self._kaggle().submission(competition, ref)
        entry = leaderboard.current(self._board(), competition, ref)
        return SubmissionResult(ref=entry["ref"], status=SubmissionStatus(entry["status"]), score=entry["score"],
                                error=entry["error"])

    def find_submission(self, competition: str, message: str, since: float) -> SubmissionResult | None:
        if not self._scored_here(competition):
            return self._kaggle().find_submission(competition, message, since)
        ref = leaderboard.find_ref(local_paths.root(self._board()), competition, message, since)
        return self.submission(competition, ref) if ref is not None else None

    def allowance(self, competition: str) -> Allowance | None:
        """Kaggle's daily limit where its submissions go to Kaggle; none on the local leaderboard."""
        return None if self._scored_here(competition) else self._kaggle().allowance(competition)

    def quota(self) -> Quota | None:
        return None  # the cluster's GPUs are yours: no quota, and no cost control either

    # -- datasets: the folders of datasets_root, mounted as they are ---------------------------------------------

    def dataset(self, slug: str) -> DatasetState | None:
        return folder_dataset(self.config, slug)

    def upload_dataset(self, folder: Path, new: bool, notes: str) -> None:
        check_in_place(self.config, folder)

    def _scored_here(self, competition: str) -> bool:
        return (paths.data_root(self.config) / competition / "solution.csv").is_file()

    def _hidden_test(self, competition: str) -> bool:
        return (paths.data_root(self.config) / competition / "hidden_test").is_dir()

    def _board(self) -> Config:
        """The project's local leaderboard (the local backend's), scoring on the competitions the nodes read."""
        config = paths.sandbox_config(self.config)
        local_paths.root(config).mkdir(parents=True, exist_ok=True)
        return config

    def _kaggle(self):
        from toolkit.backends.kaggle.backend import KaggleBackend  # credentials needed only here

        return KaggleBackend(self.config)


def _ended(state: dict) -> bool:
    return Status(state.get("status", Status.QUEUED.value)).terminal


def _end(run_dir: Path, state: dict, status: Status, message: str, **more) -> None:
    """Record a version's end (the caller holds the lock)."""
    state.update(status=status.value, failure_message=message, finished_at=time.time(), **more)
    write_state(run_dir, state)


def _own_lines(text: str) -> str:
    """The log without Ray's own lines (setting up, the entrypoint's command): what the kernel printed."""
    return "".join(line for line in text.splitlines(keepends=True) if not RAY_LINE.match(line))
