"""The local backend: runs kernel folders on this machine in Kaggle's directory layout.

Each pushed version lives in `.toolkit/local/kernels/<slug>/v<N>/`:
  kernel/       the folder as pushed      input/<source>  competition, datasets, kernel outputs (links)
  working/      the kernel's cwd, outputs  state.json      status, pid, failure message
  log.txt       everything it printed      executed.ipynb  the notebook with its outputs
Kernels run in detached child processes, so they outlive the command that pushed them;
at most `concurrency` run at once and the rest wait in order, as QUEUED. Code competition reruns
(see rerun.py) are sandboxes of the same shape in `.toolkit/local/reruns/<slug>/<ref>/`, in the same queue.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from toolkit.competitions import layout as competitions
from toolkit.backends.local import rerun as code_rerun
from toolkit.core.config import Config
from toolkit.core.errors import BackendError
from toolkit.core.procs import pid_alive
from toolkit.specs.spec import check_slug
from toolkit.backends.base import KernelState, PushResult, Quota, SubmissionResult
from toolkit.core.status import Status, SubmissionStatus
from toolkit.backends.local.sandbox import copy_outputs

CREDENTIAL_VARS = ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR")
# Loaded by the kernel's Python processes: Kaggle's package set and read-only inputs (see its docstring).
KAGGLE_SITE = Path(__file__).resolve().parent / "kaggle_site"
KAGGLE_IMAGE = Path(__file__).resolve().parents[2] / "data" / "kaggle_image_packages.txt"


def _kernel_env(read_only: list[str], internet: bool = True) -> dict[str, str]:
    """What the kernel process gets on top of the runner's environment."""
    path = os.pathsep.join(p for p in (str(KAGGLE_SITE), os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": path, "TOOLKIT_KAGGLE_IMAGE": str(KAGGLE_IMAGE), "TOOLKIT_READONLY": os.pathsep.join(read_only)}
    return env if internet else {**env, "TOOLKIT_NO_INTERNET": "1"}


WEIGHTS_DATASET = "timm-weights"  # datasets/<this>/<arch>.pth: a timm state dict per architecture


class LocalBackend:
    name = "local"
    queues = True  # accepts every push and starts queued kernels itself as slots free
    can_stop = True
    runs_here = True
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
        return config.username or "local"

    def __init__(self, config: Config):
        self.config = config
        self.username = config.username or "local"
        self.root = config.state_dir / "local"
        self.kernels = self.root / "kernels"
        self.reruns = self.root / "reruns"  # code competition reruns: <slug>/<submission ref>/
        self.kernels.mkdir(parents=True, exist_ok=True)

    # -- push ---------------------------------------------------------------------------------

    def push(self, folder: Path, session_timeout_s: int | None = None) -> PushResult:
        """Queue the kernel in `folder` as a new version; it ends in ERROR once it has run for
        `session_timeout_s` in all (default: the configured limit), as a Kaggle session does."""
        meta = json.loads((folder / "kernel-metadata.json").read_text())
        slug = check_slug(meta["id"].split("/", 1)[1])
        inputs = self._resolve_sources(meta)
        with self._lock():
            self._remove_unfinished_pushes(slug)
            version, run_dir = self._new_version(slug)
            # inputs: what a code competition rerun of this version attaches again.
            self._lay_out(run_dir, folder, inputs, code_rerun.internet_enabled(meta),
                          {"code_file": meta["code_file"], "inputs": {m: str(p.resolve()) for m, p in inputs.items()},
                           "session_timeout_s": session_timeout_s or self.config.session_timeout_s})
        self.dispatch()
        return PushResult(version=version, url=run_dir.resolve().as_uri())

    def _lay_out(self, run_dir: Path, kernel: Path, inputs: dict[str, Path], internet: bool, state: dict,
                 rerun: bool = False) -> None:
        """Fill a new sandbox (the caller holds the lock): the kernel folder as pushed, its inputs as Kaggle
        mounts them, an empty working folder, and state.json (QUEUED) last; a half-made one is removed."""
        try:
            shutil.copytree(kernel, run_dir / "kernel")
            read_only = self._build_inputs(run_dir / "input", inputs, rerun)
            (run_dir / "working").mkdir()
            env = {**_kernel_env(read_only, internet), **(code_rerun.RERUN_ENV if rerun else {})}
            _write_state(run_dir, {"status": Status.QUEUED.value, "queued_at": time.time(), **state, "kernel_env": env})
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise

    def find_pushed(self, slug: str, after: int | None) -> PushResult | None:
        """The newest version of `slug` when it is newer than `after` (to reconcile a push cut off before the
        store recorded it), or None. A version is one whose state.json was written (see push)."""
        with self._lock():
            made = [v for v in self._versions(slug) if (self._run_dir(slug, v) / "state.json").exists()]
        if not made or made[-1] <= (after or 0):
            return None
        return PushResult(version=made[-1], url=self._run_dir(slug, made[-1]).resolve().as_uri())

    def remove_shell(self, slug: str) -> bool:
        """A refused push leaves nothing here: nothing stands in the way unless versions exist."""
        return not self._versions(slug)

    def scored_by_server(self, competition: str) -> bool:
        root = self.config.resolve(self.config.competitions_root) / competition
        return (root / "kaggle_evaluation").is_dir()

    def _remove_unfinished_pushes(self, slug: str) -> None:
        """A version folder without state.json is a push killed half way (state.json is written last,
        under the lock we hold): it never became a version, so it goes."""
        for version in self._versions(slug):
            run_dir = self._run_dir(slug, version)
            if not (run_dir / "state.json").exists():
                shutil.rmtree(run_dir, ignore_errors=True)

    def _resolve_sources(self, meta: dict) -> dict[str, Path]:
        """Map each input's mount point (relative to input/) to what it links to; refuse unknown sources."""
        inputs: dict[str, Path] = {}
        root = self.config.resolve(self.config.competitions_root)
        for name in meta.get("competition_sources", []):
            inputs[self._mount("competitions", name)] = competitions.find_competition(root, name,
                                                                                      self.config.labels_given)
        for ref in meta.get("dataset_sources", []):
            owner, slug = ref.split("/")[:2] if "/" in ref else (self.username, ref)
            path = self.config.resolve(self.config.datasets_root) / slug
            if not path.is_dir():
                raise BackendError(f"dataset source '{ref}' not found (no folder {path})")
            inputs[self._mount("datasets", f"{owner}/{slug}")] = path
        for ref in meta.get("kernel_sources", []):
            parts = ref.split("/")
            owner, slug, version = parts[0], parts[1], (int(parts[2]) if len(parts) > 2 else None)
            inputs[self._mount("notebooks", f"{owner}/{slug}")] = self._completed_working_dir(slug, version, ref)
        return inputs

    def _mount(self, kind: str, ref: str) -> str:
        """Where Kaggle mounts an input. Today (2026, as kernels pushed from the CLI report it):
        /kaggle/input/competitions/<slug>, /kaggle/input/notebooks/<owner>/<slug>,
        /kaggle/input/datasets/<owner>/<slug>; older sessions saw /kaggle/input/<slug> for all three."""
        return f"{kind}/{ref}" if self.config.input_layout == "current" else ref.rsplit("/", 1)[-1]

    def _completed_working_dir(self, slug: str, version: int | None, ref: str) -> Path:
        versions = self._versions(slug)
        if version is None and versions:
            version = versions[-1]
        if version not in versions:
            raise BackendError(f"kernel source '{ref}' not found on the local backend")
        run_dir = self._run_dir(slug, version)
        if _read_state(run_dir).get("status") != Status.COMPLETE.value:
            raise BackendError(f"kernel source '{ref}' has not completed", "wait for it with kpull outputs")
        return run_dir / "working"

    def _build_inputs(self, input_dir: Path, inputs: dict[str, Path], rerun: bool = False) -> list[str]:
        """Lay out input/ and return every path the kernel must not write to (Kaggle mounts inputs
        read-only): input/ itself and what its links point at. A rerun sees the hidden test set."""
        input_dir.mkdir()
        comp_root = self.config.resolve(self.config.competitions_root).resolve()
        read_only = [str(input_dir.resolve())]
        for mount, target in inputs.items():
            target, link = target.resolve(), input_dir / mount
            link.parent.mkdir(parents=True, exist_ok=True)
            read_only.append(str(target))
            if target.parent == comp_root:
                # A real folder of links, so the hidden solution.csv and hidden_test/ never reach the kernel.
                link.mkdir()
                for name, source in code_rerun.competition_entries(target, rerun).items():
                    link.joinpath(name).symlink_to(source)
            else:
                link.symlink_to(target, target_is_directory=True)
        return read_only

    def _new_version(self, slug: str) -> tuple[int, Path]:
        version = (self._versions(slug) or [0])[-1] + 1
        run_dir = self._run_dir(slug, version)
        run_dir.mkdir(parents=True)
        return version, run_dir

    def _versions(self, slug: str) -> list[int]:
        folder = self.kernels / slug
        if not folder.is_dir():
            return []
        return sorted(int(p.name[1:]) for p in folder.iterdir() if p.name[:1] == "v" and p.name[1:].isdigit())

    def _run_dir(self, slug: str, version: int) -> Path:
        return self.kernels / slug / f"v{version}"

    # -- scheduling ---------------------------------------------------------------------------

    def _lock(self):
        return _locked(self.root)

    def dispatch(self) -> None:
        """Mark dead runners as failed and start queued kernels, oldest first, up to the limit."""
        with self._lock():
            dirs = [*self.kernels.glob("*/v*"), *self.reruns.glob("*/*")]
            states = [(d, _read_state(d)) for d in dirs if (d / "state.json").exists()]
            running = 0
            for run_dir, state in states:
                if state.get("status") == Status.RUNNING.value:
                    if pid_alive(state.get("pid")):
                        running += 1
                    else:
                        state.update(status=Status.ERROR.value, finished_at=time.time(),
                                     failure_message="the kernel's process ended without reporting a result")
                        _write_state(run_dir, state)
            queued = sorted((s.get("queued_at", 0), str(d)) for d, s in states if s.get("status") == "QUEUED")
            for _, run_dir in queued[: max(0, self.config.concurrency - running)]:
                self._start(Path(run_dir))

    def _start(self, run_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
        env.update(KAGGLE_KERNEL_RUN_TYPE="Batch", MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
        with open(run_dir / "runner.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "toolkit.backends.local.runner", str(run_dir),
                 str(_read_state(run_dir).get("session_timeout_s") or self.config.session_timeout_s),
                 str(self.config.state_dir.parent)],
                cwd=run_dir / "working", env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        state = _read_state(run_dir)
        state.update(status=Status.RUNNING.value, pid=process.pid, started_at=time.time())
        _write_state(run_dir, state)

    # -- status, outputs, logs ----------------------------------------------------------------

    def status(self, slug: str, version: int) -> KernelState:
        run_dir = self._existing(slug, version)
        state = _read_state(run_dir)
        if state.get("status") in (Status.QUEUED.value, Status.RUNNING.value):
            self.dispatch()
            state = _read_state(run_dir)
        return KernelState(Status(state["status"]), state.get("failure_message", ""))

    def output(self, slug: str, version: int, dest: Path, names: tuple[str, ...]) -> list[Path]:
        run_dir = self._existing(slug, version)
        return copy_outputs(run_dir / "working", dest, names, self.config.max_output_mb * 2**20)

    def logs(self, slug: str, version: int) -> str:
        log = self._existing(slug, version) / "log.txt"
        return log.read_text(errors="replace") if log.exists() else ""

    def stop(self, slug: str, version: int) -> KernelState:
        """Stop a queued or running version (kstop): kill its processes, record it as stopped by the user,
        and start the next queued kernel. A version that already ended is left as it is."""
        from toolkit.backends.local.runner import stop_processes

        run_dir = self._existing(slug, version)
        with self._lock():  # the runner records its end under this lock too: one of the two wins
            state = _read_state(run_dir)
            if Status(state.get("status", Status.ERROR.value)).terminal:
                return KernelState(Status(state["status"]), state.get("failure_message", ""))
            stop_processes(run_dir, state.get("pid"))
            state.update(status=Status.CANCEL_ACKNOWLEDGED.value, failure_message="stopped by the user",
                         finished_at=time.time())
            _write_state(run_dir, state)
        self.dispatch()
        return KernelState(Status.CANCEL_ACKNOWLEDGED, "stopped by the user")

    def _existing(self, slug: str, version: int) -> Path:
        run_dir = self._run_dir(slug, version)
        if not (run_dir / "state.json").exists():
            raise BackendError(f"kernel {self.username}/{slug} version {version} does not exist on the local backend")
        return run_dir

    # -- submissions --------------------------------------------------------------------------

    def submit(self, competition: str, file: Path, message: str,
               slug: str | None = None, version: int | None = None) -> SubmissionResult:
        """Score against the competition's solution.csv, which makes a small local leaderboard. In a code
        competition (one with hidden_test/) the kernel version is rerun on the hidden test set instead and
        the submission stays PENDING until that rerun has been scored (see rerun.py)."""
        comp_dir = self.config.resolve(self.config.competitions_root) / competition
        hidden = code_rerun.hidden_test(comp_dir)
        if hidden is not None and not (slug and version):
            raise code_rerun.refuse_file(competition)
        state = code_rerun.check_submittable(self, competition, slug, version) if hidden else {}
        with self._lock():
            board = self._leaderboard()
            ref = str(len(board) + 1)
            if hidden is not None:
                run_dir = code_rerun.create(self, competition, slug, version, ref, state)
                # Like Kaggle's fileName: the output file of the rerun that gets scored.
                entry = {"status": SubmissionStatus.PENDING, "score": None, "error": "", "rerun": str(run_dir),
                         "file_name": Path(file).name}
                file = run_dir / "working" / Path(file).name
            else:
                entry = _score_file(file, comp_dir / "solution.csv")
            entry.update(ref=ref, competition=competition, message=message, file=str(file), date=time.time())
            board.append(entry)
            _atomic_write(self.root / "submissions.json", json.dumps(board, indent=2))
        if hidden is not None:
            self.dispatch()
        return self.submission(competition, ref)

    def submission(self, competition: str, ref: str) -> SubmissionResult:
        entry = self._entry(competition, ref)
        if entry["status"] == SubmissionStatus.PENDING and entry.get("rerun"):
            entry = self._settle(entry)
        return SubmissionResult(ref=entry["ref"], status=SubmissionStatus(entry["status"]), score=entry["score"],
                                error=entry["error"])

    def submission_log(self, competition: str, ref: str) -> str:
        """What a code competition submission's rerun printed ("" for a file submission)."""
        rerun_dir = self._entry(competition, ref).get("rerun")
        log = Path(rerun_dir) / "log.txt" if rerun_dir else None
        return log.read_text(errors="replace") if log and log.exists() else ""

    def _entry(self, competition: str, ref: str) -> dict:
        for entry in self._leaderboard():
            if entry["ref"] == str(ref) and entry["competition"] == competition:
                return entry
        raise BackendError(f"no local submission {ref} for {competition}")

    def _settle(self, entry: dict) -> dict:
        """A rerun submission: still PENDING while its rerun waits or runs, then scored and recorded."""
        run_dir = Path(entry["rerun"])
        if not Status(_read_state(run_dir).get("status", "ERROR")).terminal:
            self.dispatch()  # starts it when a slot is free; notices a runner that died
        state = _read_state(run_dir)
        if not Status(state.get("status", "ERROR")).terminal:
            return entry
        comp_dir = self.config.resolve(self.config.competitions_root) / entry["competition"]
        outcome = code_rerun.result(run_dir, state, entry["file_name"], comp_dir / competitions.HIDDEN_TEST)
        with self._lock():
            board = self._leaderboard()
            for stored in board:
                if stored["ref"] == entry["ref"] and stored["competition"] == entry["competition"]:
                    stored.update(outcome)
                    entry = stored
            _atomic_write(self.root / "submissions.json", json.dumps(board, indent=2))
        return entry

    def find_submission(self, competition: str, message: str, since: float) -> SubmissionResult | None:
        """A submission with this description made at or after `since` (for a submit that was cut off)."""
        for entry in reversed(self._leaderboard()):
            if entry["competition"] == competition and entry["message"] == message and entry["date"] >= since:
                return self.submission(competition, entry["ref"])
        return None

    def _leaderboard(self) -> list[dict]:
        path = self.root / "submissions.json"
        return json.loads(path.read_text()) if path.exists() else []

    def quota(self) -> Quota | None:
        return None


def _score_file(file: Path, solution: Path) -> dict:
    from toolkit.competitions.scoring import accuracy

    if not solution.is_file():
        return {"status": SubmissionStatus.COMPLETE, "score": None, "error": "no solution.csv: not scored"}
    try:
        return {"status": SubmissionStatus.COMPLETE, "score": accuracy(file, solution), "error": ""}
    except Exception as exc:  # a bad file is a failed submission, as on Kaggle
        return {"status": SubmissionStatus.ERROR, "score": None, "error": str(exc)}


def _read_state(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "state.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _write_state(run_dir: Path, state: dict) -> None:
    _atomic_write(run_dir / "state.json", json.dumps(state, indent=2))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One lock for every state change on this backend (push, start, finish)."""
    with open(root / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def finish(run_dir: Path, status: Status, failure_message: str = "") -> None:
    """Called by the runner process when its kernel ends (root is .toolkit/local)."""
    with _locked(run_dir.parents[2]):
        state = _read_state(run_dir)
        state.update(status=status.value, failure_message=failure_message, finished_at=time.time())
        _write_state(run_dir, state)
