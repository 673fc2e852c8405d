"""The local leaderboard, `.toolkit/local/submissions.json`: a file submission is scored on the
competition's solution.csv at once; in a code competition (one with hidden_test/) the kernel version is
rerun on the hidden test set instead (rerun.py) and the submission stays PENDING until that rerun has
ended, then is settled: scored, or failed as Kaggle would fail it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from toolkit.backends.local import paths, rerun
from toolkit.backends.local.inputs import hidden_test
from toolkit.backends.local.queue import atomic_write, dispatch, locked, read_state
from toolkit.competitions.files import HIDDEN_TEST
from toolkit.core.config import Config
from toolkit.core.errors import BackendError
from toolkit.core.status import Status, SubmissionStatus


def submit(config: Config, competition: str, file: Path, message: str,
           slug: str | None = None, version: int | None = None) -> str:
    """Record a submission of `file` (in a code competition: of the kernel version that writes it); its ref."""
    comp_dir = _competition_dir(config, competition)
    hidden = hidden_test(comp_dir)
    if hidden is not None and not (slug and version):
        raise rerun.refuse_file(competition)
    state = rerun.check_submittable(config, competition, slug, version) if hidden else {}
    root = paths.root(config)
    with locked(root):
        board = load(root)
        ref = str(len(board) + 1)
        if hidden is not None:
            entry = _queue_rerun(config, competition, slug, version, ref, state, file)
        else:
            entry = {**score_file(file, comp_dir / "solution.csv"), "file": str(file)}
        entry.update(ref=ref, competition=competition, message=message, date=time.time())
        board.append(entry)
        _save(root, board)
    if hidden is not None:
        dispatch(config)
    return ref


def _queue_rerun(config: Config, competition: str, slug: str, version: int, ref: str, state: dict,
                 file: Path) -> dict:
    run_dir = rerun.create(config, competition, slug, version, ref, state)
    # Like Kaggle's fileName: the output file of the rerun that gets scored.
    name = Path(file).name
    return {"status": SubmissionStatus.PENDING, "score": None, "error": "", "rerun": str(run_dir),
            "file_name": name, "file": str(run_dir / "working" / name)}


def score_file(file: Path, solution: Path) -> dict:
    from toolkit.competitions.scoring import accuracy

    if not solution.is_file():
        return {"status": SubmissionStatus.COMPLETE, "score": None, "error": "no solution.csv: not scored"}
    try:
        return {"status": SubmissionStatus.COMPLETE, "score": accuracy(file, solution), "error": ""}
    except Exception as exc:  # a bad file is a failed submission, as on Kaggle
        return {"status": SubmissionStatus.ERROR, "score": None, "error": str(exc)}


def current(config: Config, competition: str, ref: str) -> dict:
    """The submission's entry, settled first if it waits on a rerun."""
    entry = find_entry(paths.root(config), competition, ref)
    if entry["status"] == SubmissionStatus.PENDING and entry.get("rerun"):
        entry = settle(config, entry)
    return entry


def settle(config: Config, entry: dict) -> dict:
    """A rerun submission: still PENDING while its rerun waits or runs, then scored and recorded."""
    run_dir = Path(entry["rerun"])
    if not _ended(read_state(run_dir)):
        dispatch(config)  # starts it when a slot is free; notices a runner that died
    state = read_state(run_dir)
    if not _ended(state):
        return entry
    hidden = _competition_dir(config, entry["competition"]) / HIDDEN_TEST
    outcome = rerun.result(run_dir, state, entry["file_name"], hidden)
    root = paths.root(config)
    with locked(root):
        board = load(root)
        for stored in board:
            if stored["ref"] == entry["ref"] and stored["competition"] == entry["competition"]:
                stored.update(outcome)
                entry = stored
        _save(root, board)
    return entry


def find_entry(root: Path, competition: str, ref: str) -> dict:
    for entry in load(root):
        if entry["ref"] == str(ref) and entry["competition"] == competition:
            return entry
    raise BackendError(f"no local submission {ref} for {competition}")


def find_ref(root: Path, competition: str, message: str, since: float) -> str | None:
    """The newest submission with this description made at or after `since` (for a submit that was cut off)."""
    for entry in reversed(load(root)):
        if entry["competition"] == competition and entry["message"] == message and entry["date"] >= since:
            return entry["ref"]
    return None


def rerun_log(root: Path, competition: str, ref: str) -> str:
    """What a code competition submission's rerun printed ("" for a file submission)."""
    rerun_dir = find_entry(root, competition, ref).get("rerun")
    log = Path(rerun_dir) / "log.txt" if rerun_dir else None
    return log.read_text(errors="replace") if log and log.exists() else ""


def load(root: Path) -> list[dict]:
    path = root / "submissions.json"
    return json.loads(path.read_text()) if path.exists() else []


def _save(root: Path, board: list[dict]) -> None:
    atomic_write(root / "submissions.json", json.dumps(board, indent=2))


def _ended(state: dict) -> bool:
    return Status(state.get("status", "ERROR")).terminal


def _competition_dir(config: Config, competition: str) -> Path:
    return config.resolve(config.competitions_root) / competition
