"""The Kaggle backend over the real kaggle 2.2.5 client, talking HTTP to the emulator (no monkeypatching of kaggle)."""

from __future__ import annotations

import json
import os

import pytest
from emulator import KEY, USER, build_tiny_competition, prepare_client, write_kernel

from toolkit.backends.kaggle.backend import KaggleBackend
from toolkit.core.config import load_config
from toolkit.core.errors import (BackendError, KernelNotFound, NotConfigured, NotebookNotFound, QuotaExhausted,
                                 SlotsFull, SubmissionLimitReached, UnsafeOutput)
from toolkit.core.status import Status

CONFIG_DIR = prepare_client()  # the client's config directory (conftest set it up before kaggle was imported)
COMP = "tiny-comp"
OUTPUTS = {"tta.pkl": b"P" * 5000, "metrics.json": b'{"tta_error": 0.1}', "extra.bin": b"not asked for",
           "submission.csv": b"image_id,label\n0.png,a\n1.png,b\n2.png,a\n3.png,a\n"}


@pytest.fixture
def emulator(start_emulator, tmp_path):
    build_tiny_competition(tmp_path / "competitions", COMP)
    return start_emulator(scripted_outputs=OUTPUTS)


@pytest.fixture
def backend(emulator, kaggle_backend):
    return kaggle_backend(max_output_mb=1)


# -- credentials -------------------------------------------------------------------------------

def test_missing_credentials_say_where_to_look(emulator, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    with pytest.raises(NotConfigured) as info:
        KaggleBackend(load_config(tmp_path, backend="kaggle"))
    text = str(info.value)
    assert "kaggle.json" in text and "KAGGLE_USERNAME" in text and "KAGGLE_API_TOKEN" in text
    assert "Generate New Token" in text and "\n" not in text
    assert capsys.readouterr().out == ""  # the client's own help text is not let through
    assert emulator.requests == []


def test_kaggle_json_in_config_dir_is_used(emulator, tmp_path, monkeypatch):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    creds = CONFIG_DIR / "kaggle.json"
    creds.write_text(json.dumps({"username": USER, "key": KEY}))
    os.chmod(creds, 0o600)
    try:
        backend = KaggleBackend(load_config(tmp_path, backend="kaggle"))
        assert backend.username == USER
        assert backend.quota().allowed_hours == 30
    finally:
        creds.unlink()


def test_rejected_key_is_a_one_line_hint_without_the_key(emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_KEY", "wrong-key")
    backend = KaggleBackend(load_config(tmp_path, backend="kaggle"))
    with pytest.raises(NotConfigured) as info:
        backend.quota()
    assert "HTTP 401" in str(info.value) and "Generate New Token" in str(info.value)
    assert "wrong-key" not in str(info.value)
    # The client turns a 401 on kernel calls into the same "kernels.get was denied" ValueError as a 403:
    # a rejected key must still read as a credentials problem, not as a missing kernel.
    for call in (lambda: backend.status("resnet18-abcdef12", 1), lambda: backend.logs("resnet18-abcdef12", 1)):
        with pytest.raises(NotConfigured, match="HTTP 401.*credentials were rejected"):
            call()


# -- kernels -----------------------------------------------------------------------------------

def test_push_status_output_logs(backend, emulator, tmp_path):
    folder = write_kernel(tmp_path / "kernels", "resnet18-abcdef12")
    result = backend.push(folder)
    assert result.version == 1 and result.url.endswith(f"/code/{USER}/resnet18-abcdef12")
    sent = emulator.calls("SaveKernel")[0].body
    assert sent["slug"] == f"{USER}/resnet18-abcdef12" and sent["newTitle"] == "resnet18 abcdef12"
    assert sent["machineShape"] == "NvidiaTeslaT4" and sent["enableGpu"] is True
    assert sent["isPrivate"] is True and sent["enableInternet"] is True
    assert sent["competitionDataSources"] == [COMP] and sent["sessionTimeoutSeconds"] == 9 * 3600 - 300
    assert json.loads(sent["text"])["metadata"]["kernelspec"]["name"] == "python3"
    assert emulator.calls("SaveKernel")[0].headers["Authorization"].startswith("Basic ")

    seen = [backend.status("resnet18-abcdef12", 1).status for _ in range(3)]
    assert seen == [Status.RUNNING, Status.COMPLETE, Status.COMPLETE]
    assert emulator.calls("GetKernelSessionStatus")[0].body["versionLabel"] == "v1"

    dest = tmp_path / "out"
    files = backend.output("resnet18-abcdef12", 1, dest, ("tta.pkl", "metrics.json"))
    assert sorted(p.name for p in files) == ["metrics.json", "tta.pkl"]
    assert (dest / "tta.pkl").read_bytes() == OUTPUTS["tta.pkl"]
    assert sorted(p.name for p in dest.iterdir()) == ["metrics.json", "tta.pkl"]  # no extra file, no log
    assert emulator.calls("ListKernelSessionOutput")[0].body["pageSize"] == 200
    text = "starting resnet18-abcdef12\nWarning: scripted session, nothing ran\nran resnet18-abcdef12\n"
    assert backend.logs("resnet18-abcdef12", 1) == text


def test_log_arrives_in_chunks_and_reads_as_text(backend, emulator, tmp_path):
    """Kaggle sends a log as many {stream_name, time, data} chunks; logs() joins them in order."""
    backend.push(write_kernel(tmp_path, "resnet18-chunks01"))
    raw = json.loads(backend.api.kernels_logs(f"{USER}/resnet18-chunks01/1"))  # what the real client returns
    assert len(raw) == 3 and all(set(chunk) == {"stream_name", "time", "data"} for chunk in raw)
    assert [c["stream_name"] for c in raw] == ["stdout", "stderr", "stdout"]
    assert backend.logs("resnet18-chunks01", 1) == "".join(c["data"] for c in raw)


def test_missing_or_foreign_kernel_is_not_found_not_bad_credentials(backend, emulator, tmp_path):
    for call in (lambda: backend.status("no-such-kernel", 1), lambda: backend.logs("no-such-kernel", 1),
                 lambda: backend.output("no-such-kernel", 1, tmp_path / "out", ("tta.pkl",))):
        with pytest.raises(KernelNotFound) as info:
            call()
        assert str(info.value).startswith(f"kernel {USER}/no-such-kernel not found or not yours")
        assert "credentials were rejected" not in str(info.value) and "\n" not in str(info.value)
    backend.push(write_kernel(tmp_path, "resnet18-mine0001"))
    with pytest.raises(ValueError, match="Permission 'kernels.get' was denied"):  # someone else's: the same 403
        backend.api.kernels_status("someoneelse/resnet18-mine0001")
    with pytest.raises(BackendError, match="HTTP 404") as info:  # your kernel, a version it never had
        backend.status("resnet18-mine0001", 9)
    assert not isinstance(info.value, KernelNotFound)


def test_cpu_kernel_gets_no_accelerator(backend, emulator, tmp_path):
    backend.push(write_kernel(tmp_path, "ensemble-cpu-1", gpu=False, internet=False))
    sent = emulator.calls("SaveKernel")[0].body
    assert "machineShape" not in sent and sent["enableGpu"] is False and sent["enableInternet"] is False


def test_push_errors_are_typed(backend, emulator, tmp_path):
    emulator.fail("SaveKernel", "slots_full")
    with pytest.raises(SlotsFull, match="Maximum batch GPU session count of 2"):
        backend.push(write_kernel(tmp_path, "resnet18-slots001"))
    folder = write_kernel(tmp_path, "resnet18-badcomp1")
    meta = json.loads((folder / "kernel-metadata.json").read_text())
    meta["competition_sources"] = ["no-such-comp"]
    (folder / "kernel-metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BackendError, match="no-such-comp"):
        backend.push(folder)
    meta.update(id="someoneelse/resnet18-badcomp1", competition_sources=[COMP])
    (folder / "kernel-metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BackendError, match="Notebook not found"):
        backend.push(folder)


def test_gpu_session_limit_is_enforced(backend, emulator, tmp_path):
    emulator.gpu_slots = 1
    backend.push(write_kernel(tmp_path, "resnet18-first001"))
    with pytest.raises(SlotsFull):
        backend.push(write_kernel(tmp_path, "resnet18-second01"))


def test_cpu_session_limit_keeps_cpu_kernels_waiting(backend, emulator, tmp_path):
    """CPU kernels (the ensemble) have their own batch session limit, refused in the same words."""
    emulator.cpu_slots = 1
    backend.push(write_kernel(tmp_path, "ensemble-first-01", gpu=False, internet=False))
    with pytest.raises(SlotsFull, match="Maximum batch CPU session count of 1 reached") as info:
        backend.push(write_kernel(tmp_path, "ensemble-second-1", gpu=False, internet=False))
    assert "the run waits" in str(info.value)
    assert backend.push(write_kernel(tmp_path, "resnet18-gpu00001")).version == 1  # GPU slots are separate
    emulator.version("ensemble-first-01").status = "COMPLETE"  # the session ends, the slot frees
    # The refused first push left an empty kernel that refuses every push until it is deleted.
    second = write_kernel(tmp_path, "ensemble-second-1", gpu=False, internet=False)
    with pytest.raises(NotebookNotFound):
        backend.push(second)
    assert not backend.remove_shell("ensemble-first-01")  # a kernel with a version is never deleted
    assert backend.remove_shell("ensemble-second-1") and emulator.deleted == ["ensemble-second-1"]
    assert backend.push(second).version == 1


def test_weekly_quota_refusal_is_final_and_names_the_refresh(backend, emulator, tmp_path):
    emulator.gpu_seconds_used = emulator.gpu_seconds_allowed  # 30 h of 30 used
    with pytest.raises(QuotaExhausted) as info:
        backend.push(write_kernel(tmp_path, "resnet18-quota001"))
    text = str(info.value)
    assert not isinstance(info.value, SlotsFull) and "\n" not in text
    assert "Maximum weekly GPU quota of 30.00 hours reached" in text and "refreshes 2030-01-06 00:00 UTC" in text
    assert len(emulator.calls("SaveKernel")) == 1  # asked once; what Kaggle made is an empty kernel
    assert emulator.kernels["resnet18-quota001"]["versions"] == {}
    assert backend.push(write_kernel(tmp_path, "ensemble-cpu-0001", gpu=False, internet=False)).version == 1

    emulator.gpu_seconds_used = 0
    emulator.fail("SaveKernel", "weekly_quota")
    emulator.fail("GetAcceleratorQuotaStatistics", "500", times=10)  # the refresh time cannot be read
    with pytest.raises(QuotaExhausted, match="refreshes at its weekly reset"):
        backend.push(write_kernel(tmp_path, "resnet18-quota002"))


@pytest.mark.parametrize("kind", ["429", "500", "drop"])
def test_status_survives_transient_faults(backend, emulator, tmp_path, kind):
    backend.push(write_kernel(tmp_path, "resnet18-faulty001"))
    emulator.fail("GetKernelSessionStatus", kind, retry_after=0.2)
    assert backend.status("resnet18-faulty001", 1).status == Status.RUNNING
    assert len(emulator.calls("GetKernelSessionStatus")) == 2


def test_persistent_server_error_is_one_line(backend, emulator, tmp_path):
    backend.push(write_kernel(tmp_path, "resnet18-faulty002"))
    emulator.fail("GetKernelSessionStatus", "500", times=10)
    with pytest.raises(BackendError) as info:
        backend.status("resnet18-faulty002", 1)
    assert "HTTP 500" in str(info.value) and "\n" not in str(info.value)


def test_error_session_reports_failure_message(backend, emulator, tmp_path):
    emulator.fail("SaveKernel", "error_session", message="Your notebook tried to allocate more memory")
    backend.push(write_kernel(tmp_path, "resnet18-oom00001"))
    state = backend.status("resnet18-oom00001", 1)
    assert state.status == Status.ERROR and "allocate more memory" in state.failure_message


def test_truncated_download_resumes_with_range(backend, emulator, tmp_path):
    backend.push(write_kernel(tmp_path, "resnet18-trunc001"))
    emulator.version("resnet18-trunc001").polls = 5
    emulator.fail("download", "truncate")
    backend.output("resnet18-trunc001", 1, tmp_path / "out", ("tta.pkl",))
    assert (tmp_path / "out" / "tta.pkl").read_bytes() == OUTPUTS["tta.pkl"]
    assert any("Range" in r.headers for r in emulator.calls("download"))


def test_output_list_dropped_then_retried(backend, emulator, tmp_path):
    backend.push(write_kernel(tmp_path, "resnet18-drop0001"))
    emulator.version("resnet18-drop0001").polls = 5
    emulator.fail("ListKernelSessionOutput", "drop")
    files = backend.output("resnet18-drop0001", 1, tmp_path / "out", ("metrics.json",))
    assert [p.name for p in files] == ["metrics.json"]


def test_unsafe_and_oversized_outputs_are_refused(backend, emulator, tmp_path):
    backend.push(write_kernel(tmp_path, "resnet18-unsafe01"))
    version = emulator.version("resnet18-unsafe01")
    version.polls = 5
    emulator.scripted_outputs = {"../escape.txt": b"x", "big.bin": b"0" * (2 * 2**20)}
    with pytest.raises(UnsafeOutput, match="escape"):
        backend.output("resnet18-unsafe01", 1, tmp_path / "out", ("../escape.txt",))
    assert not (tmp_path / "escape.txt").exists()
    version.status = "RUNNING"  # let the next poll pick up the new outputs
    with pytest.raises(UnsafeOutput, match="1 MB limit"):
        backend.output("resnet18-unsafe01", 1, tmp_path / "out2", ("big.bin",))
    assert not (tmp_path / "out2" / "big.bin").exists()


# -- submissions and quota --------------------------------------------------------------------

def test_file_submission_is_scored(backend, emulator, tmp_path):
    good = tmp_path / "submission.csv"
    good.write_bytes(OUTPUTS["submission.csv"])
    sub = backend.submit(COMP, good, "first try")
    assert sub.status == "PENDING"
    assert backend.submission(COMP, sub.ref).status == "PENDING"  # scoring takes a moment
    done = backend.submission(COMP, sub.ref)
    assert done.status == "COMPLETE" and done.score == pytest.approx(0.75)
    start = emulator.calls("StartSubmissionUpload")[0].body
    assert start["competitionName"] == COMP and start["fileName"] == "submission.csv"
    assert emulator.calls("CreateSubmission")[0].body["submissionDescription"] == "first try"

    bad = tmp_path / "bad.csv"
    bad.write_text("image_id,label\nnope.png,a\n")
    ref = backend.submit(COMP, bad, "bad").ref
    backend.submission(COMP, ref)
    failed = backend.submission(COMP, ref)
    assert failed.status == "ERROR" and "sample submission" in failed.error and failed.score is None


def test_submission_upload_failure_is_clear(backend, emulator, tmp_path):
    file = tmp_path / "submission.csv"
    file.write_bytes(OUTPUTS["submission.csv"])
    with pytest.raises(BackendError, match="unknown-comp"):
        backend.submit("unknown-comp", file, "x")
    emulator.fail("CreateSubmission", "500")
    with pytest.raises(BackendError, match="HTTP 500"):
        backend.submit(COMP, file, "x")
    assert backend.submit(COMP, file, "again").status == "PENDING"  # a rerun goes through


def test_the_daily_allowance_is_read_and_a_submission_past_it_named(backend, emulator, tmp_path):
    """GetSubmissionLimits counts valid submissions since 00:00 UTC; Kaggle refuses one past the allowance with a
    bare 400 (its reason only in the body): named from the limits, in Kaggle's words."""
    emulator.daily_submissions = 0
    assert backend.allowance(COMP) is None  # all zeros: "not on a team yet" (kagglesdk), not a limit
    emulator.daily_submissions = 2
    good, bad = tmp_path / "submission.csv", tmp_path / "bad.csv"
    good.write_bytes(OUTPUTS["submission.csv"])
    bad.write_text("image_id,label\nnope.png,a\n")
    assert backend.allowance(COMP).left == 2
    backend.submit(COMP, good, "one")
    backend.submission(COMP, backend.submit(COMP, bad, "an error does not count").ref)
    assert backend.allowance(COMP).left == 1
    backend.submit(COMP, good, "two")
    allowance = backend.allowance(COMP)
    assert (allowance.left, allowance.today, allowance.total) == (0, 2, 2)
    with pytest.raises(SubmissionLimitReached) as info:
        backend.submit(COMP, good, "three")
    assert "daily Submission allowance (2) today, 0 submissions remaining today" in str(info.value)
    assert "00:00 UTC" in str(info.value) and "\n" not in str(info.value)
    assert len(emulator.calls("CreateSubmission")) == 4  # the refused one reached Kaggle: it was Kaggle's refusal


def test_code_submission_names_kernel_version(backend, emulator, tmp_path):
    backend.push(write_kernel(tmp_path, "ensemble-code-01", gpu=False, internet=False))
    while backend.status("ensemble-code-01", 1).status != Status.COMPLETE:
        pass
    sub = backend.submit(COMP, tmp_path / "submission.csv", "code", slug="ensemble-code-01", version=1)
    body = emulator.calls("CreateCodeSubmission")[0].body
    assert body == {"competitionName": COMP, "kernelOwner": USER, "kernelSlug": "ensemble-code-01",
                    "kernelVersion": 1, "fileName": "submission.csv", "submissionDescription": "code"}
    backend.submission(COMP, sub.ref)
    assert backend.submission(COMP, sub.ref).score == pytest.approx(0.75)


def test_kaggle_evaluation_past_the_first_page_of_the_root_is_found(backend, emulator, tmp_path):
    root = tmp_path / "competitions" / COMP
    for i in range(250):  # the emulator pages files first: the folder comes on the second page of 200
        (root / f"extra-{i:03d}.csv").write_text("x\n")
    assert backend.scored_by_server(COMP) is False
    (root / "kaggle_evaluation").mkdir()
    assert backend.scored_by_server(COMP) is True
    tokens = [call.body.get("pageToken", "") for call in emulator.calls("ListDataTreeFiles")]
    assert tokens == ["", "200", "", "200"]


def test_quota(backend, emulator):
    emulator.gpu_seconds_used = 9 * 3600
    quota = backend.quota()
    assert (quota.used_hours, quota.allowed_hours, quota.left_hours) == (9, 30, 21)
    assert quota.refresh == "2030-01-06 00:00 UTC"


def test_quota_left_subtracts_time_reserved_by_running_sessions(backend, emulator):
    emulator.gpu_seconds_used, emulator.gpu_seconds_reserved = 9 * 3600, 5 * 3600
    quota = backend.quota()
    assert (quota.used_hours, quota.reserved_hours, quota.left_hours) == (9, 5, 16)


def test_kstatus_quota_line_shows_reserved_time(emulator, tmp_path):
    from typer.testing import CliRunner

    from toolkit import cli

    def quota_line() -> str:
        result = CliRunner().invoke(cli.status_app, ["--backend", "kaggle"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return next(line for line in result.output.splitlines() if line.startswith("GPU quota"))

    assert "reserved" not in quota_line()  # nothing reserved: the line stays short
    emulator.gpu_seconds_reserved = 2 * 3600
    assert quota_line() == ("GPU quota: 1.0 h used + 2.0 h reserved by running sessions of 30.0 h (27.0 h left), "
                            "refreshes 2030-01-06 00:00 UTC")


def test_a_lost_submission_is_found_again(backend, emulator, tmp_path):
    """ksubmit asks for a submission with its own description before submitting a second time."""
    import time as clock

    file = tmp_path / "submission.csv"
    file.write_bytes(OUTPUTS["submission.csv"])
    before = clock.time()
    sub = backend.submit(COMP, file, "ensemble (ensemble-x v1)")
    found = backend.find_submission(COMP, "ensemble (ensemble-x v1)", before)
    assert found is not None and found.ref == sub.ref
    assert backend.find_submission(COMP, "another description", before) is None
    assert backend.find_submission(COMP, "ensemble (ensemble-x v1)", clock.time() + 5) is None


def test_a_silent_connection_is_cut_off_with_one_line(emulator, kaggle_backend):
    """The client sets no timeouts: a call that gets no answer ends at api_timeout_s, not never."""
    import time as clock

    backend = kaggle_backend(api_timeout_s=1)
    emulator.fail("GetKernelSessionStatus", "hang", seconds=4)
    started = clock.monotonic()
    with pytest.raises(BackendError, match="did not answer status of .* within 1 s") as caught:
        backend.status("some-kernel", 1)
    assert clock.monotonic() - started < 3.5
    assert "\n" not in str(caught.value)
