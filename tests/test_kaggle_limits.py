"""Kaggle as it behaves, through the real console scripts over the emulator (and the local backend where
Kaggle's limit is modelled there): the empty kernel a refused first push leaves, names Kaggle refuses, the
session limit (a session past it, a pack past it), a cancel that stays requested, expired download links, a
failing log stream, the daily submission allowance, inference-server competitions, mixed-case slugs, token
credentials (a refused one too), and what a new user meets first."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from console import console, one_line
from emulator import build_tiny_competition, wait_until_done, write_kernel

from toolkit.backends.local.limits import timeout_line
from toolkit.core.config import load_config
from toolkit.core.status import Status
from toolkit.kernel.contract import progress_line, progress_record
from toolkit.project import Project
from toolkit.runs.watch.timeouts import TIMED_OUT

COMP = "tiny-comp"
TINY = ["--item", "Resize(16)", "--batch", "aug_transforms(size=16, do_flip=False)", "--epochs", "1", "--bs", "16",
        "--scratch"]
KAGGLE = {"TOOLKIT_BACKEND": "kaggle", "TOOLKIT_COMPETITION": COMP, "TOOLKIT_POLL_INITIAL_S": "0.2",
          "TOOLKIT_POLL_MAX_S": "0.4", "TOOLKIT_WAIT_TIMEOUT_S": "60"}


def tta_outputs() -> dict[str, bytes]:
    """A training kernel's outputs as the emulator serves a scripted session's: a plain-data tta.pkl."""
    import torch

    buffer = io.BytesIO()
    torch.save({"probs": torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]),
                "files": ["0.png", "1.png", "2.png", "3.png"], "vocab": ["a", "b"], "metrics": {}}, buffer)
    return {"tta.pkl": buffer.getvalue(), "metrics.json": b'{"tta_error": 0.25, "valid_error": 0.25}'}


@pytest.fixture
def kaggle(start_emulator, tmp_path):
    """An emulator with scripted sessions (complete after two status polls) and the project pointed at it."""
    build_tiny_competition(tmp_path / "competitions", COMP)
    emu = start_emulator(env=KAGGLE, scripted_outputs=tta_outputs())
    return emu, tmp_path / "project"


def runs(project: Path) -> list:
    return Project(load_config(project)).store.runs(kind="train")


# -- 1. the empty kernel a refused first push leaves -------------------------------------------------------

SWEEP = ('[defaults]\narch = "resnet18"\nitem = "Resize(16)"\nbatch = "aug_transforms(size=16)"\nepochs = 1\n'
         'pretrained = false\n' + "".join(f'\n[[run]]\nname = "tiny-{i}"\nseed = {i}\n' for i in range(4)))


def test_a_sweep_of_four_against_two_slots_pushes_every_run_exactly_once(kaggle, tmp_path):
    emu, project = kaggle
    emu.gpu_slots = 2
    (tmp_path / "sweep.toml").write_text(SWEEP)
    done = console(project, "kpush", "sweep", str(tmp_path / "sweep.toml"), "--wait", TOOLKIT_CONCURRENCY="4")
    assert done.returncode == 0, done.stderr
    recorded = runs(project)
    assert len(recorded) == 4 and all(r.status == Status.COMPLETE and r.version == 1 for r in recorded)
    for run in recorded:  # the emulator counts versions: one each, under the run's own slug
        assert run.kernel == run.slug and len(emu.kernels[run.slug]["versions"]) == 1
    # The refused third push left an empty kernel: deleted, then pushed once for real.
    assert emu.deleted and set(emu.deleted) <= {r.slug for r in recorded}


def test_an_empty_kernel_that_cannot_be_deleted_is_left_for_a_fresh_slug(kaggle):
    emu, project = kaggle
    emu.fail("SaveKernel", "slots_full")  # the first push is refused: Kaggle keeps an empty kernel anyway
    waiting = console(project, "kpush", "train", "--arch", "resnet18", *TINY)
    assert waiting.returncode == 0, waiting.stderr
    (run,) = runs(project)
    assert run.status == Status.NEW and emu.kernels[run.slug]["versions"] == {}
    emu.fail("DeleteKernel", "500", times=10)
    watched = console(project, "kstatus", "--watch")
    assert watched.returncode == 0, watched.stderr
    (run,) = runs(project)
    fresh = f"{run.slug}-r2"
    assert (run.status, run.version, run.kernel) == (Status.COMPLETE, 1, fresh)
    assert emu.kernels[run.slug]["versions"] == {} and len(emu.kernels[fresh]["versions"]) == 1
    assert json.loads((project / "kernels" / fresh / "kernel-metadata.json").read_text())["id"].endswith(fresh)
    pulled = console(project, "kpull", "outputs", "--format", "json")  # the outputs come from the fresh slug
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)[0]["tta_error"] == 0.25


@pytest.mark.parametrize("name, says", [("2024-convnext", "starts with a digit"), ("résnet", "non-ASCII")])
def test_names_kaggle_would_refuse_are_refused_before_anything_renders(kaggle, tmp_path, name, says):
    _, project = kaggle
    (tmp_path / "sweep.toml").write_text(SWEEP.replace('name = "tiny-2"', f'name = "{name}"'))
    result = console(project, "kpush", "sweep", str(tmp_path / "sweep.toml"), "--dry-run",
                     TOOLKIT_USERNAME="someone")
    assert result.returncode == 2 and says in one_line(result) and "run 3" in result.stderr
    assert not (project / "kernels").exists()


# -- 2. limits as Kaggle enforces them -----------------------------------------------------------------------

def test_a_session_limit_at_kaggles_maximum_is_refused(tmp_path):
    result = console(tmp_path, "kstatus", "--no-refresh", TOOLKIT_SESSION_TIMEOUT_S="43200")
    assert result.returncode == 2 and "lower than Kaggle's 12-hour maximum" in one_line(result)


def test_a_run_too_long_for_a_session_is_refused_before_anything_is_recorded(kaggle, tmp_path):
    """A session limit of 200 s plans sessions of under 3 minutes, a kernel's start-up: a dry run says so and
    plans on; a push is refused in one line, and nothing is recorded or pushed."""
    _, project = kaggle
    (tmp_path / "sweep.toml").write_text(SWEEP)
    sweep = str(tmp_path / "sweep.toml")
    dry = console(project, "kpush", "sweep", sweep, "--dry-run", TOOLKIT_SESSION_TIMEOUT_S="200")
    assert dry.returncode == 0 and "4 runs are each longer alone than the 3 min a session is planned to" in dry.stderr
    pushed = console(project, "kpush", "sweep", sweep, TOOLKIT_SESSION_TIMEOUT_S="200")
    assert pushed.returncode == 2 and "Kaggle may stop them with no outputs" in one_line(pushed)
    assert "fewer epochs" in pushed.stderr and runs(project) == []


def test_a_session_past_its_limit_ends_as_kaggle_ends_it(local_backend, tmp_path):
    """nbclient limits each cell; Kaggle limits the session: three cells of two seconds overrun four. Kaggle then
    reports CANCEL_ACKNOWLEDGED with no message and keeps no outputs, its log ending in CellTimeoutError."""
    backend = local_backend()
    folder = write_kernel(tmp_path / "kernels", "slow-abcdef12", "open('early.txt', 'w').write('x')",
                          *["import time; time.sleep(2)"] * 3, competition="digits-demo", username="local")
    pushed = backend.push(folder, session_timeout_s=4)
    state = wait_until_done(backend, "slow-abcdef12", pushed.version, timeout=60)
    assert (state.status, state.failure_message) == (Status.CANCEL_ACKNOWLEDGED, "")
    assert backend.logs("slow-abcdef12", pushed.version).rstrip().endswith(timeout_line(4))
    assert backend.output("slow-abcdef12", pushed.version, tmp_path / "got", ("early.txt",)) == []


def test_kpush_wait_on_a_run_past_its_session_limit_names_it_and_what_to_change(tmp_path):
    from toolkit.competitions.demo import build_competition

    build_competition(tmp_path / "competitions", limit=40)
    result = console(tmp_path, "kpush", "train", "--arch", "resnet18", *TINY, "--wait", TOOLKIT_SESSION_TIMEOUT_S="3",
                     TOOLKIT_POLL_INITIAL_S="0.3", TOOLKIT_POLL_MAX_S="0.5")
    assert result.returncode == 3, result.stderr
    assert "ran past the session limit (3 s)" in result.stdout and "CANCEL_ACKNOWLEDGED" in result.stdout
    assert "ran past the session limit: train fewer epochs" in result.stderr and "kpush retry" not in result.stderr
    (run,) = runs(tmp_path)
    assert run.status == Status.CANCEL_ACKNOWLEDGED and run.failure_message.startswith(TIMED_OUT)
    shown = console(tmp_path, "kstatus", "--no-refresh")
    assert "ran past the session limit (a session stopped there keeps no outputs)" in shown.stderr
    assert "session_timeout_s" in shown.stderr


@pytest.mark.e2e
@pytest.mark.slow  # the requeue itself is tested over the emulator without training (the test above)
def test_a_local_pack_past_its_limit_runs_each_member_alone_once(tmp_path):
    """Its members run again in kernels of their own, once: past the limit alone too, each is then told."""
    from toolkit.competitions.demo import build_competition

    build_competition(tmp_path / "competitions", limit=40)
    result = console(tmp_path, "kpush", "train", "--arch", "resnet18", "--arch", "resnet34", *TINY, "--pack", "2",
                     "--wait", TOOLKIT_SESSION_TIMEOUT_S="3", TOOLKIT_POLL_INITIAL_S="0.3", TOOLKIT_POLL_MAX_S="0.5")
    assert result.returncode == 3, result.stderr
    recorded = runs(tmp_path)
    assert len(recorded) == 2 and all(r.kernel == r.slug and r.version == 1 for r in recorded)
    assert all(r.failure_message == "ran past the session limit (3 s), with no outputs" for r in recorded)
    kernels = {d.name: sorted(v.name for v in d.iterdir()) for d in (tmp_path / ".toolkit/local/kernels").iterdir()}
    assert len(kernels) == 3 and all(kernels[r.slug] == ["v1"] for r in recorded)  # the pack, then each alone
    assert "ran past the session limit: train fewer epochs" in result.stderr


def test_the_emulator_ends_a_pushed_session_at_its_limit_as_kaggle_does(start_emulator, kaggle_backend, tmp_path):
    from toolkit.competitions.demo import build_competition

    build_competition(tmp_path / "competitions", limit=40)
    emu = start_emulator(run_kernels=True)
    backend = kaggle_backend()
    folder = write_kernel(tmp_path / "kernels", "slow-abcdef12", "open('early.txt', 'w').write('x')",
                          *["import time; time.sleep(2)"] * 3, competition="digits-demo")
    pushed = backend.push(folder, session_timeout_s=4)
    state = wait_until_done(backend, "slow-abcdef12", pushed.version, timeout=60)
    assert (state.status, state.failure_message) == (Status.CANCEL_ACKNOWLEDGED, "")
    assert backend.logs("slow-abcdef12", pushed.version).rstrip().endswith(timeout_line(4))
    assert backend.output("slow-abcdef12", pushed.version, tmp_path / "got", ("early.txt",)) == []
    assert emu.output_files("slow-abcdef12", emu.version("slow-abcdef12")) == {}  # none listed, none downloadable


def test_a_pack_past_its_limit_requeues_the_members_that_fit_alone_and_tells_the_others(kaggle, tmp_path):
    """Kaggle kept none of the pack's outputs: a member whose own epochs in the pack's log fit a session alone
    runs again in a kernel of its own, once; one that needs longer than a session alone is told so."""
    emu, project = kaggle
    (tmp_path / "sweep.toml").write_text(SWEEP.replace(
        "".join(f'\n[[run]]\nname = "tiny-{i}"\nseed = {i}\n' for i in range(2, 4)), ""))
    emu.fail("SaveKernel", "timeout_session")
    assert console(project, "kpush", "sweep", str(tmp_path / "sweep.toml"), "--pack", "2").returncode == 0
    quick, slow = sorted(runs(project), key=lambda r: r.spec.seed)
    assert quick.host == slow.host and quick.host
    emu.version(quick.host).times_out = "".join(
        f"[{run.slug}] {progress_line(progress_record('training', epoch=0, epochs=1, error_rate=0.5, seconds=s))}\n"
        for run, s in ((quick, 30), (slow, 20000)))
    pulled = console(project, "kpull", "outputs", "--format", "json")
    assert pulled.returncode == 3, pulled.stderr
    quick, slow = sorted(runs(project), key=lambda r: r.spec.seed)
    assert (quick.status, quick.kernel, quick.version, quick.host) == (Status.COMPLETE, quick.slug, 1, "")
    assert slow.status == Status.CANCEL_ACKNOWLEDGED and slow.host and "alone it needs about 11.2 h" in slow.failure_message
    assert slow.failure_message.startswith(f"ran past the session limit (8.9 h) in pack {slow.host}")
    assert "ran past the session limit: train fewer epochs" in pulled.stderr and "kpush retry" not in pulled.stderr
    assert len(emu.kernels[quick.slug]["versions"]) == 1 and slow.slug not in emu.kernels  # requeued once, alone


def test_a_cancel_that_stays_requested_is_shown_stopping_and_not_waited_for(kaggle):
    emu, project = kaggle
    assert console(project, "kpush", "train", "--arch", "resnet18", *TINY).returncode == 0
    (run,) = runs(project)
    emu.version(run.slug).status = "CANCEL_REQUESTED"  # stopped in the web UI; Kaggle never acknowledges it
    pulled = console(project, "kpull", "outputs", timeout=60)
    assert pulled.returncode == 0, pulled.stderr
    assert "CANCEL_REQUESTED" in pulled.stdout and "stopping" in pulled.stdout
    shown = console(project, "kstatus")
    assert "stopping: a cancel was requested" in shown.stdout


def test_an_expired_download_link_is_fetched_again_with_a_fresh_listing(kaggle):
    emu, project = kaggle
    assert console(project, "kpush", "train", "--arch", "resnet18", *TINY, "--wait").returncode == 0
    emu.fail("download", "expired")  # the first signed link has run out
    pulled = console(project, "kpull", "outputs", "--format", "json")
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)[0]["tta_error"] == 0.25
    assert len(emu.calls("ListKernelSessionOutput")) >= 2


def test_download_links_refused_twice_are_a_failed_download_not_a_missing_kernel(kaggle):
    emu, project = kaggle
    assert console(project, "kpush", "train", "--arch", "resnet18", *TINY, "--wait").returncode == 0
    emu.fail("download", "expired", times=20)
    pulled = console(project, "kpull", "outputs")
    line = one_line(pulled)
    assert pulled.returncode == 2 and "failed twice" in line and "HTTP 403" in line
    assert "not found or not yours" not in line


@pytest.mark.parametrize("code, says", [(500, "HTTP 500"), (404, "has no log of it yet")])
def test_a_log_stream_that_fails_is_named_as_the_runs_log_stream_not_a_download(kaggle, code, says):
    """kernels_logs_stream is a GET (kaggle 2.2.5, ~7749) as signed downloads are: its failure is the log's."""
    emu, project = kaggle
    assert console(project, "kpush", "train", "--arch", "resnet18", *TINY, "--wait").returncode == 0
    (run,) = runs(project)
    emu.fail("logstream", str(code), times=10)  # a 5xx keeps failing past the reconnects; a 404 ends at once
    line = one_line(console(project, "klogs", run.slug, "--follow"))
    assert f"following the log of {run.slug} v1: Kaggle's log stream failed" in line and says in line
    assert "download" not in line and "not found or not yours" not in line


def test_the_clients_own_retry_notices_stay_out_of_the_output(kaggle):
    """kaggle 2.2.5's with_retry prints "Request failed ... Will retry" to stderr (~1395) on a 429 it retries."""
    emu, project = kaggle
    assert console(project, "kpush", "train", "--arch", "resnet18", *TINY).returncode == 0
    emu.fail("GetKernelSessionStatus", "429")
    shown = console(project, "kstatus")
    assert shown.returncode == 0 and shown.stderr == "", shown.stderr
    assert len(emu.calls("GetKernelSessionStatus")) == 2  # retried, after the Retry-After second


def test_a_log_stream_that_fails_once_is_opened_again(kaggle):
    emu, project = kaggle
    assert console(project, "kpush", "train", "--arch", "resnet18", *TINY, "--wait").returncode == 0
    emu.fail("logstream", "500")
    followed = console(project, "klogs", "resnet18", "--follow")
    assert followed.returncode == 0, followed.stderr
    assert "scripted session" in followed.stdout and len(emu.calls("logstream")) == 2


def test_ksubmit_past_the_daily_allowance_is_refused_before_the_ensemble_kernel_is_pushed(kaggle, kaggle_backend,
                                                                                          tmp_path):
    emu, project = kaggle
    emu.daily_submissions = 1
    assert console(project, "kpush", "train", "--arch", "resnet18", *TINY, "--wait").returncode == 0
    earlier = tmp_path / "earlier.csv"
    earlier.write_text("image_id,label\n" + "".join(f"{i}.png,a\n" for i in range(4)))
    kaggle_backend().submit(COMP, earlier, "made by hand today")
    pushes = len(emu.calls("SaveKernel"))
    result = console(project, "ksubmit", "ensemble")
    line = one_line(result)
    assert result.returncode == 2 and "tiny-comp takes no more submissions today" in line
    assert "daily Submission allowance (1)" in line and "00:00 UTC" in line
    assert len(emu.calls("SaveKernel")) == pushes and len(emu.calls("CreateSubmission")) == 1


@pytest.mark.parametrize("where", ["local", "kaggle"])
def test_an_inference_server_competition_is_said_before_anything_is_submitted(where, kaggle, tmp_path):
    from toolkit.competitions.demo import build_competition

    emu, project = kaggle
    env = {} if where == "kaggle" else {"TOOLKIT_BACKEND": "local", "TOOLKIT_COMPETITIONS_ROOT": str(tmp_path / "c")}
    root = build_competition(tmp_path / "c", limit=40, code=True) if where == "local" else tmp_path / "competitions" / COMP
    comp = root.name
    (root / "kaggle_evaluation").mkdir()
    (root / "kaggle_evaluation" / "__init__.py").write_text("")
    result = console(project, "ksubmit", "ensemble", "--competition", comp, "--code-competition", **env)
    line = one_line(result)
    assert result.returncode == 2 and "inference server" in line and "inference_server.serve()" in line
    assert not emu.calls("SaveKernel") and not emu.calls("CreateCodeSubmission")


def test_mixed_case_competition_slugs_are_accepted_as_kaggle_writes_them(tmp_path):
    result = console(tmp_path, "kpush", "train", "--arch", "resnet18", *TINY, "--backend", "kaggle", "--dry-run",
                     "--competition", "GiveMeSomeCredit", TOOLKIT_USERNAME="someone")
    assert result.returncode == 0, result.stderr
    (meta,) = [json.loads(p.read_text()) for p in (tmp_path / "kernels").glob("*/kernel-metadata.json")]
    assert meta["competition_sources"] == ["GiveMeSomeCredit"]


# -- 3. credentials as the client finds them today -----------------------------------------------------------

def test_a_push_with_an_access_token_instead_of_a_key(kaggle, monkeypatch):
    emu, project = kaggle
    emu.token = "kgat_0123456789abcdef"
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    pushed = console(project, "kpush", "train", "--arch", "resnet18", *TINY, KAGGLE_API_TOKEN=emu.token)
    assert pushed.returncode == 0, pushed.stderr
    (save,) = emu.calls("SaveKernel")
    assert save.headers["Authorization"] == f"Bearer {emu.token}" and emu.calls("IntrospectToken")
    assert save.body["slug"].startswith(f"{emu.username}/")
    assert emu.token not in pushed.stdout + pushed.stderr


def test_no_credentials_point_to_a_generated_token(kaggle, monkeypatch):
    _, project = kaggle
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    line = one_line(console(project, "kpush", "train", "--arch", "resnet18", *TINY))
    assert "no Kaggle credentials found" in line and "Generate New Token" in line
    assert "KAGGLE_API_TOKEN" in line and "~/.kaggle/access_token" in line and "kaggle auth login" in line


@pytest.mark.parametrize("key", [False, True])
def test_a_refused_token_is_named_with_how_to_make_a_new_one(kaggle, monkeypatch, key):
    """An expired token falls through quietly in the client (kaggle 2.2.5 authenticate): alone it reads as no
    credentials, beside a key it is still sent with every call (kagglesdk _try_fill_auth). Either way: which one."""
    emu, project = kaggle
    emu.token = "kgat_current0123456789"
    if not key:
        monkeypatch.delenv("KAGGLE_USERNAME")
        monkeypatch.delenv("KAGGLE_KEY")
    result = console(project, "kpush", "train", "--arch", "resnet18", *TINY, KAGGLE_API_TOKEN="kgat_expired00000")
    line = one_line(result)
    assert result.returncode == 2 and "Kaggle refused the access token in KAGGLE_API_TOKEN" in line
    assert "Generate New Token" in line and "kgat_expired" not in line and "no Kaggle credentials" not in line
    assert ("to use your key" in line) == key
    assert emu.calls("IntrospectToken") and not emu.calls("SaveKernel")


def test_a_refused_token_file_is_named_by_its_place(kaggle, monkeypatch, tmp_path):
    emu, project = kaggle
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    (tmp_path / "home" / ".kaggle").mkdir(parents=True)
    (tmp_path / "home" / ".kaggle" / "access_token").write_text("kgat_expired00000\n")
    line = one_line(console(project, "kpush", "train", "--arch", "resnet18", *TINY))
    assert "Kaggle refused the access token in ~/.kaggle/access_token (invalid or expired)" in line


# -- 4. what a new user trips on ------------------------------------------------------------------------------

def test_kstatus_no_refresh_never_calls_kaggle_even_with_kernels_but_no_registry(kaggle, monkeypatch):
    emu, project = kaggle
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    write_kernel(project / "kernels", "resnet18-abcdef12")
    result = console(project, "kstatus", "--no-refresh")
    assert result.returncode == 0
    line = one_line(result)
    assert "holds no runs" in line and "1 rendered kernel:" in line and "without --no-refresh" in line
    assert "no runs recorded yet" in result.stdout and not emu.requests


def test_a_dry_run_for_kaggle_needs_only_a_username(kaggle, monkeypatch):
    emu, project = kaggle
    monkeypatch.delenv("KAGGLE_KEY")
    monkeypatch.delenv("KAGGLE_USERNAME")
    line = one_line(console(project, "kpush", "train", "--arch", "resnet18", *TINY, "--dry-run"))
    assert "needs your username" in line and "TOOLKIT_USERNAME" in line and not (project / "kernels").exists()
    named = console(project, "kpush", "train", "--arch", "resnet18", *TINY, "--dry-run", KAGGLE_USERNAME="jo")
    assert named.returncode == 0, named.stderr
    (meta,) = [json.loads(p.read_text()) for p in (project / "kernels").glob("*/kernel-metadata.json")]
    assert meta["id"].startswith("jo/") and not emu.requests


def test_kstatus_with_no_runs_says_so_and_what_starts_one(tmp_path):
    result = console(tmp_path, "kstatus")
    assert result.returncode == 0 and result.stderr == ""
    assert "no runs recorded yet" in result.stdout and "kpush train" in result.stdout and "┏" not in result.stdout
