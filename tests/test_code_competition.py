"""Code competitions on the local backend: a submitted kernel version is rerun, internet off and with
KAGGLE_IS_COMPETITION_RERUN set, on the competition's hidden test set, and that rerun is what is scored."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from emulator import wait_scored, wait_until_done, write_kernel

from toolkit.backends.base import KernelState, SubmissionResult
from toolkit.backends.local.backend import KAGGLE_SITE, LocalBackend
from toolkit.competitions.demo import CODE_NAME, build_competition
from toolkit.competitions.files import public_entries
from toolkit.competitions.layout import check_competition
from toolkit.competitions.scoring import accuracy, read_labels
from toolkit.core.errors import BackendError, CompetitionError
from toolkit.core.status import Status

COMP = CODE_NAME
INPUT = f"../input/competitions/{COMP}"
# A nearest-centroid "model" (kernel A) and a kernel that predicts with it on the test images it finds
# (kernel B, A attached as a kernel source): the shape of a trained model plus a predicting ensemble.
CENTROIDS = (
    "import numpy as np\nfrom pathlib import Path\nfrom PIL import Image\n"
    f"train = Path('{INPUT}/train_images')\n"
    "classes = sorted(p.name for p in train.iterdir())\n"
    "load = lambda f: np.asarray(Image.open(f), dtype=np.float32)\n"
    "np.save('centroids.npy', np.stack([np.mean([load(f) for f in (train / c).iterdir()], axis=0) for c in classes]))\n"
    "Path('classes.txt').write_text('\\n'.join(classes))")
PREDICT = (
    "import csv, json, os\nimport numpy as np\nfrom pathlib import Path\nfrom PIL import Image\n"
    f"comp, model = Path('{INPUT}'), Path('../input/notebooks/local/centroids-abc12345')\n"
    "Path('seen.json').write_text(json.dumps({'rerun': os.environ.get('KAGGLE_IS_COMPETITION_RERUN'),\n"
    "    'marker': (model / 'marker.txt').read_text(), 'entries': sorted(os.listdir(comp))}))\n"
    "cents, classes = np.load(model / 'centroids.npy'), (model / 'classes.txt').read_text().split('\\n')\n"
    "ids = [row[0] for row in list(csv.reader(open(comp / 'sample_submission.csv')))[1:]]\n"
    "with open('submission.csv', 'w', newline='') as fh:\n"
    "    out = csv.writer(fh)\n"
    "    out.writerow(['image_id', 'label'])\n"
    "    for i in ids:\n"
    "        x = np.asarray(Image.open(comp / 'test_images' / i), dtype=np.float32)\n"
    "        out.writerow([i, classes[int(((cents - x) ** 2).sum(axis=(1, 2, 3)).argmin())]])")


def _kernel(folder: Path, slug: str, *cells: str, internet: bool = False, sources: tuple[str, ...] = ()) -> Path:
    return write_kernel(folder, slug, *cells, competition=COMP, username="local", gpu=False, internet=internet,
                        kernel_sources=sources)


def _run(backend: LocalBackend, folder: Path) -> tuple[int, KernelState]:
    version = backend.push(folder).version
    return version, wait_until_done(backend, folder.name, version)


def _scored(backend: LocalBackend, ref: str) -> SubmissionResult:
    return wait_scored(backend, COMP, ref)


def _submit(backend: LocalBackend, slug: str, version: int) -> SubmissionResult:
    file = backend.kernels / slug / f"v{version}" / "working" / "submission.csv"
    sub = backend.submit(COMP, file, f"{slug} v{version}", slug=slug, version=version)
    assert sub.status == "PENDING"  # the rerun has only been queued
    return sub


def _ids(csv_file: Path) -> set[str]:
    with open(csv_file, newline="") as fh:
        return {row[0] for row in list(csv.reader(fh))[1:]}


@pytest.fixture
def backend(local_backend):
    return local_backend(limit=200, code=True)


# -- the competition folder -------------------------------------------------------------------

def test_the_code_demo_splits_the_test_set_into_public_and_hidden(tmp_path):
    comp = build_competition(tmp_path, limit=200, code=True)
    hidden = comp / "hidden_test"
    assert comp.name == "digits-code-demo"
    check_competition(comp)  # hidden_test/ checked too
    public_ids, hidden_ids = _ids(comp / "sample_submission.csv"), _ids(hidden / "sample_submission.csv")
    assert public_ids and hidden_ids and not public_ids & hidden_ids
    assert hidden_ids == {p.name for p in (hidden / "test_images").iterdir()} == set(read_labels(hidden / "solution.csv"))
    assert public_ids == set(read_labels(comp / "solution.csv"))
    assert [p.name for p in public_entries(comp)] == ["sample_submission.csv", "test_images", "train_images"]
    regular = build_competition(tmp_path, limit=200)
    assert _ids(regular / "sample_submission.csv") == public_ids | hidden_ids  # the same test quarter
    assert not (regular / "hidden_test").exists()


def test_the_check_refuses_a_hidden_test_set_that_does_not_match_its_sample(tmp_path):
    comp = build_competition(tmp_path, limit=200, code=True)
    next((comp / "hidden_test" / "test_images").iterdir()).unlink()
    with pytest.raises(CompetitionError, match=r"hidden_test/sample_submission.csv does not match test_images/: "
                                               r"0 test images not in it, 1 ids without an image"):
        check_competition(comp)
    (comp / "hidden_test" / "sample_submission.csv").unlink()
    with pytest.raises(CompetitionError, match="needs test_images/ and sample_submission.csv"):
        check_competition(comp)


# -- reruns -----------------------------------------------------------------------------------

def test_a_predicting_kernel_is_rerun_on_the_hidden_test_set_and_scored_there(backend, tmp_path):
    """The rerun sees hidden_test's images and sample in place of the public ones, the kernel sources of the
    submitted version (not a newer version pushed since), KAGGLE_IS_COMPETITION_RERUN; it is scored on
    hidden_test/solution.csv."""
    comp = tmp_path / "competitions" / COMP
    kernels = tmp_path / "kernels"
    assert _run(backend, _kernel(kernels, "centroids-abc12345", CENTROIDS, "open('marker.txt', 'w').write('v1')"))[1].status == Status.COMPLETE
    version, state = _run(backend, _kernel(kernels, "predict-abc12345", PREDICT, sources=("local/centroids-abc12345",)))
    assert state.status == Status.COMPLETE, state
    working = backend.kernels / "predict-abc12345" / f"v{version}" / "working"
    assert json.loads((working / "seen.json").read_text())["rerun"] is None  # not a rerun
    assert _ids(working / "submission.csv") == _ids(comp / "sample_submission.csv")
    # A newer model version: the rerun must still attach the version the submitted kernel ran with.
    assert _run(backend, _kernel(kernels, "centroids-abc12345", CENTROIDS, "open('marker.txt', 'w').write('v2')"))[1].status == Status.COMPLETE

    sub = _submit(backend, "predict-abc12345", version)
    result = _scored(backend, sub.ref)
    rerun = backend.reruns / "predict-abc12345" / sub.ref / "working"
    assert result.status == "COMPLETE", result
    assert _ids(rerun / "submission.csv") == _ids(comp / "hidden_test" / "sample_submission.csv")
    assert result.score == pytest.approx(accuracy(rerun / "submission.csv", comp / "hidden_test" / "solution.csv"))
    assert result.score > 0.5  # it really predicted
    seen = json.loads((rerun / "seen.json").read_text())
    assert seen == {"rerun": "1", "marker": "v1", "entries": ["sample_submission.csv", "test_images", "train_images"]}
    assert _ids(working / "submission.csv") == _ids(comp / "sample_submission.csv")  # the version is untouched
    assert "Traceback" not in backend.submission_log(COMP, sub.ref)
    assert backend.submission(COMP, sub.ref) == result  # settled once, read back


def test_a_kernel_replaying_stored_predictions_fails_in_the_rerun(backend, tmp_path):
    comp = tmp_path / "competitions" / COMP
    rows = sorted(read_labels(comp / "solution.csv").items())  # "stored predictions" for the public ids
    replay = f"import csv\ncsv.writer(open('submission.csv', 'w', newline='')).writerows([('image_id', 'label'), *{rows!r}])"
    version, state = _run(backend, _kernel(tmp_path / "kernels", "replay-abc12345", replay))
    assert state.status == Status.COMPLETE
    result = _scored(backend, _submit(backend, "replay-abc12345", version).ref)
    assert result.status == "ERROR" and result.score is None
    n_hidden = len(_ids(comp / "hidden_test" / "sample_submission.csv"))
    assert result.error.startswith(f"Submission Scoring Error: submission.csv does not match sample_submission.csv: "
                                   f"{n_hidden} of its {n_hidden} ids missing"), result.error
    assert "predict on the test images the rerun finds" in result.error and "\n" not in result.error


def test_a_kernel_reading_public_test_images_by_name_fails_with_the_cell_and_cause(backend, tmp_path):
    comp = tmp_path / "competitions" / COMP
    first = sorted(_ids(comp / "sample_submission.csv"))[0]
    reads = f"open('{INPUT}/test_images/{first}', 'rb').read()\nopen('submission.csv', 'w').write('image_id,label\\n')"
    version, state = _run(backend, _kernel(tmp_path / "kernels", "stored-abc12345", "x = 1", reads))
    assert state.status == Status.COMPLETE
    sub = _submit(backend, "stored-abc12345", version)
    result = _scored(backend, sub.ref)
    assert result.status == "ERROR"
    assert result.error.startswith("Notebook Threw Exception: the rerun failed: In [2]: FileNotFoundError:"), \
        result.error
    assert first in result.error and "FileNotFoundError" in backend.submission_log(COMP, sub.ref)


def _own_address() -> str:
    """An address of this machine that is not loopback (the route a packet out would take), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # UDP: no packet is sent
            address = probe.getsockname()[0]
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        pytest.skip("this machine has no address besides loopback")
    return address


@pytest.fixture
def listener():
    """A TCP port on every address of this machine: reachable unless the kernel's internet is off."""
    server = socket.socket()
    server.bind(("0.0.0.0", 0))
    server.listen(64)
    yield _own_address(), server.getsockname()[1]
    server.close()


def test_the_internet_is_off_in_the_rerun_but_loopback_works(backend, tmp_path, listener):
    address, port = listener
    reach = ("import os, socket\n"
             f"socket.create_connection(('127.0.0.1', {port}), timeout=5).close()\n"
             "if os.environ.get('KAGGLE_IS_COMPETITION_RERUN'):\n"
             f"    socket.create_connection(('{address}', {port}), timeout=5).close()\n"
             "open('submission.csv', 'w').write('image_id,label\\n')")
    version, state = _run(backend, _kernel(tmp_path / "kernels", "online-abc12345", reach))
    assert state.status == Status.COMPLETE, state
    result = _scored(backend, _submit(backend, "online-abc12345", version).ref)
    assert result.status == "ERROR"
    assert "the rerun failed: In [1]: OSError: [Errno 101] Network is unreachable" in result.error, result.error


def test_enable_internet_false_takes_the_internet_away_from_any_kernel(backend, tmp_path, listener):
    address, port = listener
    reach = f"import socket\nsocket.create_connection(('{address}', {port}), timeout=5).close()"
    on = _run(backend, _kernel(tmp_path / "kernels", "net-on-abc12345", reach, internet=True))[1]
    off = _run(backend, _kernel(tmp_path / "kernels", "net-off-abc12345", reach, internet=False))[1]
    assert on.status == Status.COMPLETE, on
    assert off == KernelState(Status.ERROR, "In [1]: OSError: [Errno 101] Network is unreachable")


def test_offline_names_fail_to_resolve_as_on_kaggle(tmp_path):
    """The hook itself, in a plain Python process: names fail as Kaggle reports with the internet off
    ([Errno -3] Temporary failure in name resolution), numeric addresses resolve, loopback names work."""
    probe = ("import socket\n"
             "try:\n    socket.getaddrinfo('example.com', 80)\nexcept socket.gaierror as e:\n    print(e.errno, e.strerror)\n"
             "print(socket.getaddrinfo('localhost', 80)[0][4][0], socket.getaddrinfo('192.0.2.1', 80)[0][4][0])")
    env = {**os.environ, "PYTHONPATH": str(KAGGLE_SITE), "TOOLKIT_NO_INTERNET": "1"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [f"{socket.EAI_AGAIN} Temporary failure in name resolution", "127.0.0.1 192.0.2.1"]


# -- what is refused --------------------------------------------------------------------------

def test_code_competitions_take_a_completed_offline_notebook_not_a_file(backend, tmp_path):
    file = tmp_path / "submission.csv"
    file.write_text("image_id,label\n")
    with pytest.raises(BackendError, match=f"{COMP} is a code competition: it scores a notebook rerun"):
        backend.submit(COMP, file, "a file")
    online = _run(backend, _kernel(tmp_path / "kernels", "internet-abc12345", "x = 1", internet=True))[0]
    with pytest.raises(BackendError, match="has the internet enabled"):
        backend.submit(COMP, file, "online", slug="internet-abc12345", version=online)
    failed = _run(backend, _kernel(tmp_path / "kernels", "broken-abc12345", "1 / 0"))[0]
    with pytest.raises(BackendError, match=r"has not run successfully \(ERROR\)"):
        backend.submit(COMP, file, "broken", slug="broken-abc12345", version=failed)
    assert not backend.reruns.exists() or not any(backend.reruns.iterdir())  # nothing was started
