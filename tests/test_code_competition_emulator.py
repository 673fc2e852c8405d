"""Code competitions over the real kaggle client and the emulator: CreateCodeSubmission on a competition
with a hidden test set reruns the notebook version (through the emulator's local runner), the submission
reads PENDING until the rerun ends, then COMPLETE with publicScore or ERROR with errorDescription."""

from __future__ import annotations

import csv
import socket
from pathlib import Path

import pytest
from emulator import wait_scored, wait_until_done, write_kernel

from toolkit.backends.base import SubmissionResult
from toolkit.backends.kaggle.backend import KaggleBackend
from toolkit.competitions.demo import CODE_NAME, build_competition
from toolkit.competitions.scoring import read_labels
from toolkit.core.errors import BackendError
from toolkit.core.status import Status

COMP = CODE_NAME
INPUT = f"../input/competitions/{COMP}"
# Predicts "one" for every test image it finds and records whether it runs as a competition rerun.
ALL_ONES = ("import csv, os\nfrom pathlib import Path\n"
            "Path('rerun.txt').write_text(os.environ.get('KAGGLE_IS_COMPETITION_RERUN', 'unset'))\n"
            f"images = sorted(p.name for p in Path('{INPUT}/test_images').iterdir())\n"
            "csv.writer(open('submission.csv', 'w', newline='')).writerows([('image_id', 'label')] + [(i, 'one') for i in images])")


@pytest.fixture
def kaggle(start_emulator, kaggle_backend, tmp_path):
    build_competition(tmp_path / "competitions", limit=200, code=True)
    return start_emulator(run_kernels=True), kaggle_backend()


def _run(backend: KaggleBackend, root: Path, slug: str, *cells: str, internet: bool = False) -> int:
    version = backend.push(write_kernel(root, slug, *cells, competition=COMP, gpu=False, internet=internet)).version
    state = wait_until_done(backend, slug, version)
    assert state.status == Status.COMPLETE, state
    return version


def _submit_and_wait(backend: KaggleBackend, slug: str, version: int) -> SubmissionResult:
    sub = backend.submit(COMP, Path("submission.csv"), f"{slug} v{version}", slug=slug, version=version)
    assert sub.status == "PENDING"
    return wait_scored(backend, COMP, sub.ref)


def test_a_code_submission_is_scored_on_the_rerun_over_the_hidden_test_set(kaggle, tmp_path):
    emu, backend = kaggle
    comp = tmp_path / "competitions" / COMP
    version = _run(backend, tmp_path / "kernels", "all-ones-abc12345", ALL_ONES)
    result = _submit_and_wait(backend, "all-ones-abc12345", version)
    hidden = read_labels(comp / "hidden_test" / "solution.csv")
    public = read_labels(comp / "solution.csv")
    expected = sum(label == "one" for label in hidden.values()) / len(hidden)
    assert expected != pytest.approx(sum(label == "one" for label in public.values()) / len(public))  # tells them apart
    assert result.status == "COMPLETE" and result.score == pytest.approx(expected, abs=1e-5)
    (entry,) = emu.submissions.values()
    assert entry["publicScore"] == f"{expected:.5f}" and entry["fileName"] == "submission.csv"
    # KAGGLE_IS_COMPETITION_RERUN is set in the rerun only.
    local = emu.version("all-ones-abc12345", version).local
    assert (emu.runner.kernels / "all-ones-abc12345" / f"v{local}" / "working" / "rerun.txt").read_text() == "unset"
    (rerun,) = (emu.runner.reruns / "all-ones-abc12345").iterdir()
    assert (rerun / "working" / "rerun.txt").read_text() == "1"


def test_a_replaying_notebook_is_an_error_description(kaggle, tmp_path):
    emu, backend = kaggle
    rows = sorted(read_labels(tmp_path / "competitions" / COMP / "solution.csv").items())
    replay = f"import csv\ncsv.writer(open('submission.csv', 'w', newline='')).writerows([('image_id', 'label'), *{rows!r}])"
    result = _submit_and_wait(backend, "replay-abc12345", _run(backend, tmp_path / "kernels", "replay-abc12345", replay))
    assert result.status == "ERROR" and result.score is None
    assert result.error.startswith("Submission Scoring Error: submission.csv does not match sample_submission.csv")
    (entry,) = emu.submissions.values()
    assert "publicScore" not in entry and entry["errorDescription"] == result.error


def test_the_rerun_runs_offline_over_the_emulator_too(kaggle, tmp_path):
    emu, backend = kaggle
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
        except OSError:
            pytest.skip("this machine has no address besides loopback")
    server = socket.socket()
    server.bind(("0.0.0.0", 0))
    server.listen(8)
    try:
        reach = ("import os, socket\nif os.environ.get('KAGGLE_IS_COMPETITION_RERUN'):\n"
                 f"    socket.create_connection(('{address}', {server.getsockname()[1]}), timeout=5).close()")
        result = _submit_and_wait(backend, "online-abc12345", _run(backend, tmp_path / "kernels", "online-abc12345", reach))
    finally:
        server.close()
    assert result.status == "ERROR"
    assert result.error.startswith("Notebook Threw Exception: the rerun failed: In [1]: OSError: [Errno 101]"), \
        result.error


def test_a_file_upload_to_a_code_competition_is_refused(kaggle, tmp_path):
    emu, backend = kaggle
    file = tmp_path / "submission.csv"
    with open(file, "w", newline="") as fh:
        csv.writer(fh).writerows([("image_id", "label"), ("100000.png", "one")])
    with pytest.raises(BackendError, match="400"):
        backend.submit(COMP, file, "a file")
    assert emu.submissions == {}
