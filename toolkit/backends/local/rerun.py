"""Code competition reruns on the local backend: whether a version may be submitted, laying out its
rerun, and judging what the rerun wrote.

A competition folder with `hidden_test/` (test_images/, sample_submission.csv, solution.csv) is a code
competition. Submitting a kernel version there reruns that version's notebook, as Kaggle does: a new
sandbox in `.toolkit/local/reruns/<slug>/<ref>/` (same layout, runner, queue and concurrency as a
pushed version) whose competition mount shows hidden_test's test_images/ and sample_submission.csv in
place of the public ones, with the version's other inputs as they were, KAGGLE_IS_COMPETITION_RERUN=1
and the internet off. The submission stays PENDING until the rerun ends, then is scored on
hidden_test/solution.csv. Kaggle reruns only notebooks (a CSV uploaded to a code competition is
refused with 400 Bad Request: Kaggle/kaggle-cli#400), and scoring the file the notebook wrote would
hide a notebook that replays stored predictions, so a file submission there is refused too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from toolkit.backends.local import paths
from toolkit.backends.local.inputs import resolve_sources
from toolkit.backends.local.limits import TIMED_OUT
from toolkit.backends.local.queue import current_state
from toolkit.backends.local.sandbox import internet_enabled, lay_out
from toolkit.competitions.files import sample_ids
from toolkit.core.config import Config
from toolkit.core.errors import BackendError, CompetitionError
from toolkit.core.status import Status, SubmissionStatus


def refuse_file(competition: str) -> BackendError:
    return BackendError(f"{competition} is a code competition: it scores a notebook rerun on its hidden test "
                        "set, not a file", "submit the kernel that writes it: ksubmit ensemble --code-competition")


def check_submittable(config: Config, competition: str, slug: str, version: int) -> dict:
    """The version's state, if Kaggle would take it as a code submission: it ran successfully, has the
    competition attached and the internet off (the checks the tests' Kaggle emulator makes too)."""
    run_dir = paths.existing_version(config, slug, version)
    state = current_state(config, run_dir)  # refreshed: a runner that died reads ERROR
    status = Status(state["status"])
    ref = f"{paths.username(config)}/{slug} version {version}"
    if status != Status.COMPLETE:
        raise BackendError(f"kernel {ref} has not run successfully ({status.value})",
                           "a code competition reruns a version that completed: wait for it, or push a new one")
    meta = json.loads((run_dir / "kernel" / "kernel-metadata.json").read_text())
    if competition not in meta.get("competition_sources", []):
        raise BackendError(f"kernel {ref} does not have {competition} as a data source",
                           "add it to competition_sources and push a new version")
    if internet_enabled(meta):
        raise BackendError(f"kernel {ref} has the internet enabled; code competitions rerun notebooks offline",
                           "push a version with enable_internet false in its kernel-metadata.json")
    return state


def create(config: Config, competition: str, slug: str, version: int, ref: str, state: dict) -> Path:
    """Lay out the rerun sandbox of `slug` v`version` for submission `ref`, queued (caller holds the lock).
    It runs with the internet off: code competitions rerun offline and accept only notebooks that had it off."""
    root = paths.root(config)
    source = paths.version_dir(root, slug, version)
    inputs = {m: Path(p) for m, p in state.get("inputs", {}).items()} or resolve_sources(
        config, json.loads((source / "kernel" / "kernel-metadata.json").read_text()))
    run_dir = paths.rerun_dir(root, slug, ref)
    if run_dir.exists():  # a submit cut off before it recorded this ref
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    lay_out(config, run_dir, source / "kernel", inputs, False, {
        "code_file": state["code_file"], "rerun_of": f"{slug}/v{version}", "competition": competition,
        "session_timeout_s": state.get("session_timeout_s")}, rerun=True)
    return run_dir


def result(run_dir: Path, state: dict, file_name: str, hidden: Path) -> dict:
    """The submission's final status, score and error once its rerun has ended. Errors start with the
    class Kaggle reports for the same failure (Notebook Threw Exception, Notebook Timeout, Submission CSV
    Not Found, Submission Scoring Error: Kaggle's code competition errors page, as quoted at
    https://www.currypurin.com/entry/error) and go on with what the local run knows."""
    status, failure = state.get("status"), state.get("failure_message", "")
    if status != Status.COMPLETE.value:
        kind = "Notebook Timeout" if state.get(TIMED_OUT) else "Notebook Threw Exception"
        why = failure or ("it ran past the session limit" if state.get(TIMED_OUT) else
                          f"it ended {status}" if status else "its sandbox is gone")
        return _error(f"{kind}: the rerun failed: {why} (its log: {run_dir / 'log.txt'})")
    written = run_dir / "working" / file_name
    if not written.is_file():
        return _error(f"Submission CSV Not Found: the rerun wrote no {file_name}")
    try:
        mismatch = _mismatch(written, hidden / "sample_submission.csv")
    except CompetitionError as exc:
        return _error(f"Submission Scoring Error: {exc.message}")
    except OSError as exc:  # the hidden test set was removed meanwhile
        return _error(f"Submission Scoring Error: cannot read {exc.filename}: {exc.strerror}")
    if mismatch:
        return _error(f"Submission Scoring Error: {file_name} does not match sample_submission.csv: {mismatch}")
    solution = hidden / "solution.csv"
    if not solution.is_file():
        return {"status": SubmissionStatus.COMPLETE, "score": None, "error": "no hidden_test/solution.csv: not scored"}
    from toolkit.competitions.scoring import accuracy

    return {"status": SubmissionStatus.COMPLETE, "score": accuracy(written, solution), "error": ""}


def _mismatch(written: Path, sample: Path) -> str:
    """How the written ids differ from the hidden sample's ("" when they match)."""
    got, wanted = set(sample_ids(written)), set(sample_ids(sample))
    if got == wanted:
        return ""
    missing, unknown = sorted(wanted - got), sorted(got - wanted)
    detail = f"{len(missing)} of its {len(wanted)} ids missing" + (f" (e.g. {missing[0]})" if missing else "")
    detail += f", {len(unknown)} unknown ids" + (f" (e.g. {unknown[0]})" if unknown else "")
    return detail + ": predict on the test images the rerun finds, not stored predictions"


def _error(message: str) -> dict:
    return {"status": SubmissionStatus.ERROR, "score": None, "error": message}
