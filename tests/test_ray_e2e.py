"""The ray backend on a real Ray cluster started on this machine (conftest's ray_cluster: a head node and a second
node joined to it, one logical GPU each, token authentication on; `ray stop --force` after the session), through
the real console scripts: a sweep of three demo runs on two GPUs runs two at a time on both nodes and completes,
`kpull outputs` reads the outputs from the shared path, `ksubmit ensemble` runs the ensemble on the cluster and
scores it; a killed job is resubmitted once; `klogs --follow` and `kstop`; a request no node can meet, and a
refused token, are one line each."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from console import console, error_line, started
from test_logs import TICKS, followed, ticks_template

from toolkit.competitions.demo import NAME as DEMO
from toolkit.core.config import load_config
from toolkit.core.procs import pid_alive
from toolkit.core.status import Status
from toolkit.project import Project
from toolkit.runs.costs.estimate import RECORDED, estimate
from toolkit.runs.watch.progress import records
from toolkit.specs.spec import RunSpec

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

POLL = {"TOOLKIT_POLL_INITIAL_S": "0.5", "TOOLKIT_POLL_MAX_S": "1"}
TINY = '''
[defaults]
arch = "resnet18"
item = "Resize(24)"
batch = "aug_transforms(size=24, do_flip=False)"
epochs = 1
bs = 16
pretrained = false
'''
SWEEP = TINY + "".join(f'\n[[run]]\nname = "tiny-{seed}"\nseed = {seed}\n' for seed in (1, 2, 3))


@pytest.fixture(scope="module")
def project(tmp_path_factory, ray_cluster):
    from toolkit.competitions.demo import build_competition

    root = tmp_path_factory.mktemp("ray-project")
    build_competition(root / "competitions", limit=60)
    (root / "toolkit.toml").write_text('backend = "ray"\n')
    ticks_template(root / "templates")
    return root


def run_env(cluster, **more: str) -> dict[str, str]:
    return {**cluster.env, **POLL, **more}


def sandboxes(project: Path, slug: str = "*") -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(project.glob(f".toolkit/ray/kernels/{slug}/v*/state.json"))]


def _params(run) -> dict:
    """A training run's --param values; none for an ensemble."""
    return run.spec.params if run.kind == "train" else {}


def most_at_once(states: list[dict]) -> int:
    """The most runners that ran at the same time, from when each started and ended."""
    events = sorted([(s["started_at"], 1) for s in states] + [(s["finished_at"], -1) for s in states])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_a_sweep_of_three_runs_two_at_a_time_on_both_nodes_then_ensembles(project, ray_cluster):
    env = run_env(ray_cluster)
    (project / "sweep.toml").write_text(SWEEP)
    begun = time.monotonic()
    pushed = console(project, "kpush", "sweep", "sweep.toml", **env)
    assert pushed.returncode == 0, pushed.stderr
    pulled = console(project, "kpull", "outputs", "--format", "json", timeout=900, **env)
    assert pulled.returncode == 0, pulled.stderr
    took = time.monotonic() - begun
    rows = json.loads(pulled.stdout)
    assert [r["status"] for r in rows] == ["COMPLETE"] * 3
    assert all((project / "outputs").glob(f"{r['slug']}/v1/tta.pkl") for r in rows)  # read from the shared path

    states = sandboxes(project, "tiny-*")
    assert len(states) == 3 and most_at_once(states) == 2  # two GPUs: two, then one
    first_end = min(s["finished_at"] for s in states)
    assert sorted(s["started_at"] for s in states)[2] >= first_end - 1  # the third waited for a free GPU
    jobs = ray_cluster.jobs("tiny-")
    assert len(jobs) == 3 and len({j.driver_node_id for j in jobs}) == 2  # both nodes ran jobs
    print(f"\nsweep of 3 on 2 logical GPUs: {took:.0f} s; runners "
          + ", ".join(f"{s['started_at'] - min(t['queued_at'] for t in states):.0f}-"
                      f"{s['finished_at'] - min(t['queued_at'] for t in states):.0f} s" for s in states))

    log = console(project, "klogs", rows[0]["slug"], **env)
    assert log.returncode == 0 and len(records(log.stdout)) >= 1  # the epoch lines the live table reads
    assert "Running entrypoint" not in log.stdout
    spec = RunSpec(competition=DEMO, arch="resnet18", item="Resize(24)", batch="aug_transforms(size=24, do_flip=False)",
                   bs=16)
    (est,) = estimate(Project(load_config(project)), [spec])
    assert est.source == RECORDED  # estimates from the runs that finished on Ray

    submitted = console(project, "ksubmit", "ensemble", timeout=600, **env)
    assert submitted.returncode == 0, submitted.stderr
    assert "ensemble score:" in submitted.stdout  # scored on the local leaderboard (the demo has solution.csv)
    (ensemble,) = ray_cluster.jobs("ensemble-")  # the ensemble kernel ran on the cluster, on CPUs
    assert ensemble.status == "SUCCEEDED" and sandboxes(project, "ensemble-*")[0]["ray_ask"]["gpus"] == 0


def test_a_killed_job_is_resubmitted_once_and_says_so(project, ray_cluster):
    env = run_env(ray_cluster)
    pushed = console(project, "kpush", "train", *TICKS, "--param", "lead=3", "--param", "nap=1", "--param", "once=1",
                     **env)
    assert pushed.returncode == 0, pushed.stderr
    run = next(r for r in Project(load_config(project)).store.runs() if _params(r) == {"lead": 3, "nap": 1,
                                                                                                  "once": 1})
    os.kill(_running_pid(project, run.slug, 1), signal.SIGKILL)  # the job's driver, as a dying node would end it
    said = _status_saying(project, env, "resubmitted as version 2")
    assert "version 1 was lost to the cluster (Job entrypoint command failed with exit code 137): resubmitted as " \
           "version 2" in said
    watched = console(project, "kstatus", "--watch", timeout=300, **env)
    assert watched.returncode == 0, watched.stderr
    after = Project(load_config(project)).store.get(run.id)
    assert (after.status, after.version) == (Status.COMPLETE, 2)
    assert [s["status"] for s in sandboxes(project, run.slug)] == ["ERROR", "COMPLETE"]
    assert sandboxes(project, run.slug)[0]["resubmitted_as"] == 2


def test_a_job_lost_twice_is_not_resubmitted_again(project, ray_cluster):
    env = run_env(ray_cluster)
    pushed = console(project, "kpush", "train", *TICKS, "--param", "lead=3", "--param", "twice=1", **env)
    assert pushed.returncode == 0, pushed.stderr
    slug = next(r.slug for r in Project(load_config(project)).store.runs() if "twice" in _params(r))
    os.kill(_running_pid(project, slug, 1), signal.SIGKILL)
    assert console(project, "kstatus", **env).returncode == 0  # notices the loss: version 2 is submitted
    os.kill(_running_pid(project, slug, 2), signal.SIGKILL)
    watched = console(project, "kstatus", "--watch", timeout=300, **env)
    assert watched.returncode == 3  # a run it waited for ended in ERROR
    run = next(r for r in Project(load_config(project)).store.runs() if r.slug == slug)
    assert (run.status, run.version) == (Status.ERROR, 2)
    assert run.failure_message.startswith("lost to the cluster again (") and len(sandboxes(project, slug)) == 2


def test_klogs_follows_a_run_and_kstop_stops_one(project, ray_cluster):
    env = run_env(ray_cluster)
    pushed = console(project, "kpush", "train", *TICKS, "--param", "lead=3", "--param", "nap=2", "--param", "hang=2",
                     **env)
    assert pushed.returncode == 0, pushed.stderr
    slug = next(r.slug for r in Project(load_config(project)).store.runs() if "hang" in _params(r))
    lines, ended = followed(started(project, "klogs", slug, "--follow", **env))
    epochs = [t for t, text in lines if (r := records(text)) and r[0]["epoch"] is not None]
    assert len(epochs) == 3 and epochs[2] - epochs[0] >= 3  # each epoch's line as the kernel printed it (2 s apart)
    assert not any("Running entrypoint" in text for _, text in lines)

    pushed = console(project, "kpush", "train", *TICKS, "--param", "lead=60", **env)
    assert pushed.returncode == 0, pushed.stderr
    slug = next(r.slug for r in Project(load_config(project)).store.runs() if _params(r) == {"lead": 60})
    _running_pid(project, slug, 1)
    kernel = _kernel_pid(project, slug, 1)
    stopped = console(project, "kstop", slug, **env)
    assert stopped.returncode == 0 and "CANCEL_ACKNOWLEDGED" in stopped.stdout, stopped.stderr
    (job,) = ray_cluster.jobs(f"{slug}-v1-")
    deadline = time.monotonic() + 30
    while (pid_alive(kernel) or ray_cluster.client().get_job_status(job.submission_id).value != "STOPPED") \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray_cluster.client().get_job_status(job.submission_id).value == "STOPPED"
    assert not pid_alive(kernel)  # the notebook's kernel went with its job
    assert sandboxes(project, slug)[0]["failure_message"] == "stopped by the user"


def test_a_request_no_node_can_meet_is_refused_in_one_line(project, ray_cluster):
    env = run_env(ray_cluster)
    packed = console(project, "kpush", "train", "--arch", "resnet18", "--arch", "resnet34", "--epochs", "1",
                     "--pack", "2", **env)
    line = error_line(packed)
    assert packed.returncode == 2
    assert "asks for 2 GPUs and 4 CPUs on one node, and no node of the Ray cluster at" in line
    assert "(its nodes: 2 nodes of 1 GPU and 2 CPUs)" in line and "kstop drops the waiting run" in line
    dropped = console(project, "kstop", "resnet34", **env)  # the pack's runs wait (NEW): stopped, never pushed
    assert dropped.returncode == 0 and dropped.stdout.count("CANCEL_ACKNOWLEDGED") == 2, dropped.stderr
    shown = console(project, "kstatus", **env)
    assert "error:" not in shown.stderr, shown.stderr  # nothing left that a poll would push again


def test_a_missing_or_refused_token_is_one_line(project, ray_cluster, tmp_path):
    env = run_env(ray_cluster, HOME=str(tmp_path))
    args = ("kpush", "train", "--arch", "resnet50", "--epochs", "1")
    refused = console(project, *args, **{**env, "RAY_AUTH_TOKEN": "not-the-token"})
    assert error_line(refused) == (f"error: the Ray cluster at {ray_cluster.address} refused the token from "
                                   "RAY_AUTH_TOKEN (use the head node's token: `ray get-auth-token` there)")
    missing = console(project, *args, **{**env, "RAY_AUTH_TOKEN_PATH": str(tmp_path / "none")})
    assert "asks for a token (token authentication is on) and none was found" in error_line(missing)


def _running_pid(project: Path, slug: str, version: int, timeout: float = 120) -> int:
    """The runner's pid once the job has started it on its node."""
    path = project / ".toolkit" / "ray" / "kernels" / slug / f"v{version}" / "state.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = json.loads(path.read_text()) if path.exists() else {}
        if state.get("pid") and (path.parent / "kernel.pid").exists():
            return state["pid"]
        time.sleep(0.3)
    raise AssertionError(f"{slug} v{version} did not start in {timeout} s")


def _status_saying(project: Path, env: dict, words: str, timeout: float = 60) -> str:
    """kstatus's table, once a run's line says `words` (the table's cells joined, as wide as it is)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = console(project, "kstatus", **{**env, "COLUMNS": "400"}).stdout
        if words in shown:
            return shown
        time.sleep(0.5)
    raise AssertionError(f"kstatus never said '{words}': {shown}")


def _kernel_pid(project: Path, slug: str, version: int) -> int:
    return int((project / ".toolkit" / "ray" / "kernels" / slug / f"v{version}" / "kernel.pid").read_text())
