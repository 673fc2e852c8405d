"""Sweeps end to end: three tiny runs on the local backend at concurrency 1 (queue limit, re-push,
results table, plot, --top 2 ensemble), and the Kaggle backend over the emulator (a session-limit
refusal keeps a run waiting until a slot frees; a sweep over the weekly quota pushes what fits this week and
the rest after the quota's refresh)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolkit import cli
from toolkit.core.config import load_config
from toolkit.core.status import Status
from toolkit.project import Project
from toolkit.runs.outputs.loaded import Outputs

TINY = '''
[defaults]
arch = "resnet18"
item = "Resize(16)"
batch = "aug_transforms(size=16, do_flip=False)"
epochs = 1
bs = 16
pretrained = false
seed = 42
'''
ROWS = "".join(f'\n[[run]]\nname = "tiny-{i}"\nlr = {lr}\n' for i, lr in enumerate((0.01, 0.003, 0.03)))


def invoke(app, *args):
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def intervals(project_dir: Path) -> list[tuple[float, float]]:
    states = [json.loads(p.read_text()) for p in project_dir.glob(".toolkit/local/kernels/*/v*/state.json")]
    return sorted((s["started_at"], s["finished_at"]) for s in states)


@pytest.mark.e2e
@pytest.mark.slow
def test_local_sweep_end_to_end(tmp_path, monkeypatch):
    from PIL import Image

    from toolkit.competitions.demo import build_competition
    from toolkit.ensembles import members as select

    project_dir = tmp_path / "project"
    build_competition(project_dir / "competitions", limit=120)
    for name, value in {"TOOLKIT_PROJECT": str(project_dir), "TOOLKIT_CONCURRENCY": "1",
                        "TOOLKIT_POLL_INITIAL_S": "0.3", "TOOLKIT_POLL_MAX_S": "0.5", "COLUMNS": "200"}.items():
        monkeypatch.setenv(name, value)
    sweep_file = tmp_path / "tiny.toml"
    sweep_file.write_text(TINY + ROWS)

    plan = invoke(cli.push_app, "sweep", str(sweep_file), "--dry-run")
    assert "3 runs in 3 sessions" in plan and not intervals(project_dir) and not Project(load_config()).store.runs()

    invoke(cli.push_app, "sweep", str(sweep_file), "--wait")
    project = Project(load_config())
    runs = project.store.runs(kind="train")
    assert len(runs) == 3 and all(r.status == Status.COMPLETE for r in runs)
    spans = intervals(project_dir)
    assert len(spans) == 3
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end  # concurrency 1: each kernel started after the previous one finished

    again = invoke(cli.push_app, "sweep", str(sweep_file))
    assert again.count("skipped") == 3 and "0 to push" in again
    assert len(project.store.runs(kind="train")) == 3 and len(intervals(project_dir)) == 3

    pulled = invoke(cli.pull_app, "outputs", "--format", "json")  # stderr (the plot's path) is mixed in here
    assert "learning curves: outputs/results-digits-demo.png" in pulled  # one picture per competition
    rows = json.loads(pulled[pulled.index("["):])
    assert len(rows) == 3 and all(r["status"] == "COMPLETE" and r["gpu_minutes"] > 0 for r in rows)
    errors = [r["tta_error"] for r in rows]
    assert errors == sorted(errors)
    png = project_dir / "outputs" / "results-digits-demo.png"
    with Image.open(png) as image:
        image.verify()
        assert image.format == "PNG"

    # the real outputs carry validation predictions on one shared split: greedy selection works on them
    done = project.store.runs(kind="train")
    members, weights, _ = select.greedy(done, Outputs(project))
    assert members and len(weights) == len(members)

    out = invoke(cli.submit_app, "ensemble", "--top", "2")
    (sub,) = project.store.submissions()
    best_two = sorted(done, key=lambda r: (r.metrics["tta_error"], r.slug))[:2]
    assert sorted(sub.members) == sorted(r.slug for r in best_two) and sub.weights == [1.0, 1.0]
    assert "ensemble score:" in out


@pytest.fixture
def emulator(start_emulator, tmp_path):
    from toolkit.competitions.demo import build_competition

    build_competition(tmp_path / "competitions", limit=60)
    return start_emulator(gpu_slots=2, polls_to_complete=2, env=dict(
        TOOLKIT_POLL_INITIAL_S="0.2", TOOLKIT_POLL_MAX_S="0.3", TOOLKIT_BACKEND="kaggle", COLUMNS="200"))


def test_kaggle_session_limit_keeps_runs_waiting(emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_CONCURRENCY", "3")  # more than Kaggle's 2 slots: Kaggle refuses the third
    sweep_file = tmp_path / "tiny.toml"
    sweep_file.write_text(TINY + ROWS)
    invoke(cli.push_app, "sweep", str(sweep_file))
    project = Project(load_config())
    states = sorted(r.status.value for r in project.store.runs())
    assert states == ["NEW", "QUEUED", "QUEUED"]  # the refused push left its run waiting, not failed
    refused = [c for c in emulator.calls("SaveKernel")]
    assert len(refused) == 3

    invoke(cli.status_app, "--watch")  # keeps polling and pushes the waiting run when a slot frees
    runs = project.store.runs()
    assert all(r.status == Status.COMPLETE and r.version == 1 for r in runs)
    assert len(emulator.calls("SaveKernel")) >= 4  # refused again while both slots were busy, then accepted
    assert sum(len(k["versions"]) for k in emulator.kernels.values()) == 3


# resnet18 is in neither the registry nor the seed's table: priced from timm's benchmark tables, about 20 min a run.
LONG = TINY.replace("epochs = 1", "epochs = 14")


def test_a_packed_sweep_that_fits_the_quota_is_pushed(emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_CONCURRENCY", "5")
    emulator.gpu_seconds_used = emulator.gpu_seconds_allowed - 45 * 60  # 45 minutes left: the pair's one session
    two = tmp_path / "two.toml"
    two.write_text(LONG + ROWS.rsplit("\n[[run]]", 1)[0])  # the first two rows
    out = invoke(cli.push_app, "sweep", str(two), "--pack", "2")
    assert "2 runs in 1 session, about 0.3 quota hours; 0.8 h left this week" in out
    assert "all 1 sessions fit this week's quota" in out
    runs = Project(load_config()).store.runs()
    assert len(emulator.calls("SaveKernel")) == 1 and {r.status for r in runs} == {Status.QUEUED}
    assert len({r.host for r in runs}) == 1 and runs[0].host

    three = tmp_path / "three.toml"  # an hour as three sessions: over the quota, pushed anyway when forced
    three.write_text(LONG.replace("seed = 42", "seed = 7") + ROWS)
    out = invoke(cli.push_app, "sweep", str(three), "--force")
    assert "--force: all 3 sessions pushed now" in out
    assert not any(r.held for r in Project(load_config()).store.runs())


def test_a_sweep_over_the_quota_pushes_what_fits_and_the_rest_after_the_refresh(emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_CONCURRENCY", "3")
    emulator.gpu_seconds_used = emulator.gpu_seconds_allowed - 25 * 60  # 25 minutes left: one session of three
    emulator.quota_refresh_at = int(time.time()) + 6  # the weekly reset, seconds away (Kaggle sends whole seconds)
    sweep_file = tmp_path / "three.toml"
    sweep_file.write_text(LONG + ROWS)
    out = invoke(cli.push_app, "sweep", str(sweep_file))
    assert "3 runs in 3 sessions, about 1.0 quota hours; 0.4 h left this week" in out
    assert "1 of 3 sessions fit this week's quota; the other 2 runs wait until it refreshes" in out
    project = Project(load_config())
    first, *later = sorted(project.store.runs(), key=lambda r: r.id)
    assert first.status == Status.QUEUED and all(r.status == Status.NEW and r.held for r in later)
    assert all(r.not_before == emulator.quota_refresh_at for r in later)
    shown = invoke(cli.status_app)
    assert shown.count("held for the weekly GPU quota") == 2 and len(emulator.calls("SaveKernel")) == 1

    time.sleep(max(0.0, later[0].not_before - time.time()) + 0.2)
    invoke(cli.status_app, "--watch")  # after the refresh: pushes the held runs, without --force, and waits
    assert all(r.status == Status.COMPLETE and r.version == 1 for r in project.store.runs())
    assert len(emulator.calls("SaveKernel")) == 3 and emulator.gpu_seconds_used == 0


def test_retry_shows_the_failure_and_pushes_a_new_version(emulator, tmp_path):
    sweep_file = tmp_path / "one.toml"
    sweep_file.write_text(TINY + '\n[[run]]\nname = "flaky"\n')
    emulator.fail("SaveKernel", "error_session", message="CUDA out of memory")
    invoke(cli.push_app, "sweep", str(sweep_file))
    invoke(cli.status_app)
    project = Project(load_config())
    (run,) = project.store.runs()
    assert run.status == Status.ERROR and "CUDA out of memory" in run.failure_message
    out = invoke(cli.push_app, "retry", "flaky")
    assert "retrying" in out and "CUDA out of memory" in out
    (run,) = project.store.runs()
    assert run.version == 2 and run.status == Status.QUEUED
    assert "no failed runs" in invoke(cli.push_app, "retry")
