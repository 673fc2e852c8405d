"""One contract, every backend: the same cases run against the local backend, against the Kaggle backend (the
real kaggle client over the emulator, which runs the pushed notebook through its local runner) and against the
ray backend (a real two-node Ray cluster started on this machine: the slow tier)."""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from emulator import KEY, USER, KaggleEmulator, use_emulator, wait_scored, write_kernel

from toolkit.backends import REGISTRY, backend_class
from toolkit.backends.base import Backend, KernelState, PushResult, Quota, SubmissionResult
from toolkit.competitions.demo import NAME as COMP
from toolkit.competitions.demo import build_competition
from toolkit.core.config import Config, load_config
from toolkit.core.errors import BackendError
from toolkit.core.status import Status

SLUG = "contract-abc12345"
MESSAGE = "contract: the sample submission"
# Submits the sample submission as it is, leaves a file nobody asks for, and says hello in its log.
CELLS = (f"import shutil\nshutil.copy('../input/competitions/{COMP}/sample_submission.csv', 'submission.csv')",
         "open('extra.txt', 'w').write('not asked for')\nprint('contract says hello')")
KINDS = tuple(REGISTRY)  # every backend there is
# Connected: a Ray cluster takes seconds to start, so the ray backend's cases run with the end-to-end variants.
CONNECTED = [pytest.param(kind, marks=(pytest.mark.e2e, pytest.mark.slow)) if kind == "ray" else kind
             for kind in KINDS]


@dataclass
class Pushed:
    backend: Backend
    config: Config
    since: float  # just before the push
    version: int
    states: list[Status]  # every status seen until it ended
    root: Path


def _connect(kind: str, root: Path, patch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """The backend of that kind on a project in `root`, and what to stop afterwards."""
    if kind == "local":
        return backend_class(kind)(load_config(root, backend="local", username=USER)), None
    if kind == "ray":  # the session's cluster, stopped after the session
        for key, value in request.getfixturevalue("ray_cluster").env.items():
            patch.setenv(key, value)
        return backend_class(kind)(load_config(root, backend="ray", username=USER)), None
    assert kind == "kaggle", f"the contract does not know how to connect the {kind} backend yet"
    emulator = KaggleEmulator(root / "emu", root / "competitions", USER, KEY, run_kernels=True).start()
    use_emulator(emulator, patch, root, USER, KEY)
    return backend_class(kind)(load_config(root / "project", backend="kaggle")), emulator


@pytest.fixture(scope="module", params=CONNECTED)
def pushed(request, tmp_path_factory):
    """The tiny notebook pushed once per backend and followed until it ended."""
    root = tmp_path_factory.mktemp(request.param)
    build_competition(root / "competitions", limit=40)
    with pytest.MonkeyPatch.context() as patch:
        backend, emulator = _connect(request.param, root, patch, request)
        try:
            since = time.time()
            folder = write_kernel(root / "kernels", SLUG, *CELLS, competition=COMP, gpu=False, internet=False)
            version = backend.push(folder).version
            states = [backend.status(SLUG, version).status]
            deadline = time.monotonic() + 120
            while not states[-1].terminal and time.monotonic() < deadline:
                time.sleep(0.3)
                states.append(backend.status(SLUG, version).status)
            yield Pushed(backend, backend.config, since, version, states, root)
        finally:
            if emulator is not None:
                emulator.stop()


# -- the protocol: every member, the same parameters --------------------------------------------------------

# What Backend declares: its attributes and its methods.
MEMBERS = sorted({*Backend.__annotations__, *(n for n in vars(Backend) if not n.startswith("_"))})


@pytest.mark.parametrize("kind", KINDS)
def test_every_backend_has_every_member_of_the_protocol(kind):
    cls = backend_class(kind)
    missing = [name for name in MEMBERS if name != "username" and not hasattr(cls, name)]
    assert not missing, f"{cls.__name__} lacks {missing}"
    for name in MEMBERS:
        declared = getattr(Backend, name, None)
        if callable(declared):
            assert list(inspect.signature(getattr(cls, name)).parameters) == \
                list(inspect.signature(declared).parameters), f"{cls.__name__}.{name} takes other parameters"
    assert isinstance(cls.queues, bool) and isinstance(cls.can_stop, bool) and isinstance(cls.runs_here, bool)
    assert isinstance(cls.uploads_datasets, bool)
    assert cls.poll_s is None or 0 < cls.poll_s[0] <= cls.poll_s[1]


def test_a_connected_backend_is_a_backend(pushed):
    assert isinstance(pushed.backend, Backend)  # every member, username included
    assert pushed.backend.username == USER


def test_where_things_are_is_a_path_or_nowhere(pushed):
    cls, config = type(pushed.backend), pushed.config
    for where in (cls.competitions_root(config), cls.weights_file(config, "resnet18"), cls.solution(config, COMP)):
        assert where is None or isinstance(where, Path)
    root = cls.competitions_root(config)
    if root is not None:  # competitions here: the pushed one was found there
        assert (root / COMP).is_dir()


# -- kernels --------------------------------------------------------------------------------------------------

def test_a_pushed_notebook_runs_to_complete(pushed):
    assert pushed.version == 1
    assert pushed.states[-1] == Status.COMPLETE
    assert set(pushed.states) <= {Status.QUEUED, Status.RUNNING, Status.COMPLETE}
    assert pushed.backend.status(SLUG, pushed.version) == KernelState(Status.COMPLETE, "")


def test_output_downloads_only_the_named_files(pushed):
    dest = pushed.root / "out"
    files = pushed.backend.output(SLUG, pushed.version, dest, ("submission.csv",))
    assert files == [dest / "submission.csv"]
    sample = pushed.root / "competitions" / COMP / "sample_submission.csv"
    assert (dest / "submission.csv").read_bytes() == sample.read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == ["submission.csv"]


def test_logs_hold_what_the_notebook_printed(pushed):
    assert "contract says hello" in pushed.backend.logs(SLUG, pushed.version)


def test_a_version_that_does_not_exist_is_a_backend_error(pushed):
    with pytest.raises(BackendError):
        pushed.backend.status(SLUG, pushed.version + 5)


def test_find_pushed_finds_a_version_newer_than_the_known_one(pushed):
    found = pushed.backend.find_pushed(SLUG, None)
    assert isinstance(found, PushResult) and found.version == pushed.version
    assert pushed.backend.find_pushed(SLUG, pushed.version - 1) == found
    assert pushed.backend.find_pushed(SLUG, pushed.version) is None  # nothing made after the known version
    assert pushed.backend.find_pushed("never-pushed-abc12345", None) is None


def test_remove_shell_never_removes_a_kernel_with_versions(pushed):
    assert pushed.backend.remove_shell(SLUG) is False
    assert pushed.backend.status(SLUG, pushed.version).status == Status.COMPLETE
    assert pushed.backend.remove_shell("never-pushed-abc12345") is True  # nothing stands in the way


def test_a_competition_without_kaggle_evaluation_is_scored_by_its_file(pushed):
    assert pushed.backend.scored_by_server(COMP) is False


def test_stop_on_a_finished_version_leaves_it_or_says_how(pushed):
    backend = pushed.backend
    if type(backend).can_stop:
        assert backend.stop(SLUG, pushed.version).status == Status.COMPLETE
    else:
        with pytest.raises(BackendError, match="web UI"):
            backend.stop(SLUG, pushed.version)


def test_a_dataset_never_made_is_none(pushed):
    assert pushed.backend.dataset("never-made-dataset") is None


# -- submissions and quota ------------------------------------------------------------------------------------

def test_submit_then_follow_and_find_the_submission(pushed):
    backend = pushed.backend
    file = pushed.root / "competitions" / COMP / "sample_submission.csv"
    since = time.time()
    sent = backend.submit(COMP, file, MESSAGE)
    assert isinstance(sent, SubmissionResult) and sent.ref
    result = wait_scored(backend, COMP, sent.ref)
    assert (result.ref, result.status, result.error) == (sent.ref, "COMPLETE", "")
    assert isinstance(result.score, float) and 0.0 <= result.score <= 1.0  # scored against solution.csv
    found = backend.find_submission(COMP, MESSAGE, since - 1)
    assert found is not None and found.ref == sent.ref
    assert backend.find_submission(COMP, "a message never sent", since - 1) is None


def test_quota_is_none_or_hours_that_add_up(pushed):
    quota = pushed.backend.quota()
    if quota is not None:
        assert isinstance(quota, Quota)
        assert 0 <= quota.used_hours <= quota.allowed_hours and quota.reserved_hours >= 0
        assert quota.left_hours == max(0.0, quota.allowed_hours - quota.used_hours - quota.reserved_hours)
