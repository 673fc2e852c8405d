"""The ray backend without a cluster: what a kernel asks for and the refusal of what no node has, its settings,
its one-line failures, how a job's end is judged (a fake job server: lost jobs resubmitted once, failures before
the kernel started, stops), the registry following a resubmitted version, the node side's environment, and where
submissions go. tests/test_ray_e2e.py runs the same backend on a real Ray cluster."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from console import console, error_line
from emulator import USER, build_tiny_competition, write_kernel

from toolkit.backends.base import KernelState, PushResult
from toolkit.backends.local.queue import read_state, write_state
from toolkit.backends.ray import entrypoint, jobs
from toolkit.backends.ray.backend import RayBackend, _own_lines
from toolkit.backends.ray.cluster import Job, Node, address, translate
from toolkit.competitions.demo import NAME as DEMO
from toolkit.competitions.demo import build_competition
from toolkit.core.config import load_config
from toolkit.core.errors import BackendError, ConfigError, NotConfigured
from toolkit.core.status import Status
from toolkit.kernel.render import render_pack_notebook
from toolkit.project import Project
from toolkit.runs.watch.refresh import refresh

COMP = "tiny-comp"  # the Kaggle emulator's
SLUG = "ray-abc12345"


@pytest.fixture(autouse=True)
def no_ray_settings(monkeypatch):
    for key in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "TOOLKIT_BACKEND"):
        monkeypatch.delenv(key, raising=False)


# -- what a kernel asks for ---------------------------------------------------------------------------------

def test_a_kernel_asks_for_the_gpus_it_trains_on_and_cpus_to_match():
    assert jobs.ask({"enable_gpu": False}, {}, 2.0) == jobs.Ask(0, 2.0)  # the ensemble: CPUs only
    assert jobs.ask({"enable_gpu": True}, {}, 2.0) == jobs.Ask(1, 2.0)
    pack = render_pack_notebook("pack-3-abc12345", {"a": "print(1)", "b": "print(2)", "c": "print(3)"})
    assert jobs.ask({"enable_gpu": True}, pack, 4) == jobs.Ask(3, 12)  # one GPU per run
    assert str(jobs.Ask(1, 2)) == "1 GPU and 2 CPUs"


def test_a_request_no_node_can_meet_is_refused_in_one_line_naming_both():
    nodes = [Node(1, 2), Node(1, 2), Node(0, 8)]
    assert jobs.fits(jobs.Ask(1, 2), nodes) and not jobs.fits(jobs.Ask(2, 4), nodes)
    assert not jobs.fits(jobs.Ask(1, 4), nodes)  # the CPUs must be on the GPU's node
    line = str(jobs.refusal("pack-2-abc12345", jobs.Ask(2, 4), nodes, "http://head:8265"))
    assert "\n" not in line
    assert "pack-2-abc12345 asks for 2 GPUs and 4 CPUs on one node" in line
    assert "its nodes: 2 nodes of 1 GPU and 2 CPUs; 0 GPUs and 8 CPUs" in line and "--pack" in line


# -- settings and one-line failures ----------------------------------------------------------------------------

def test_the_ray_table_and_ray_address(tmp_path, monkeypatch):
    (tmp_path / "toolkit.toml").write_text('backend = "ray"\n[ray]\naddress = "http://head:8265"\n'
                                           'data = "/shared/competitions"\nshared = "/shared/runs"\ncpus_per_gpu = 4\n')
    config = load_config(tmp_path)
    assert (config.backend, config.ray.address, config.ray.cpus_per_gpu) == ("ray", "http://head:8265", 4)
    assert config.ray.data == Path("/shared/competitions") and config.ray.shared == Path("/shared/runs")
    assert config.given == {"backend", "ray"}
    monkeypatch.setenv("RAY_ADDRESS", "http://other:8265")  # Ray's own variable, over the file
    assert load_config(tmp_path).ray.address == "http://other:8265"


@pytest.mark.parametrize("table, words", [
    ("adress = 'x'", "unknown key 'adress' in [ray]"), ("cpus_per_gpu = 'four'", "[ray] 'cpus_per_gpu' must be"),
    ("cpus_per_gpu = 0", "cpus_per_gpu must be a positive number"), ("autoscaling = 1", "'autoscaling' must be")])
def test_a_bad_ray_table_is_one_line(tmp_path, table, words):
    (tmp_path / "toolkit.toml").write_text(f"[ray]\n{table}\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_pretrained_weights_come_from_the_datasets_folder_else_timm_downloads_them(tmp_path):
    config = load_config(tmp_path, backend="ray")
    assert RayBackend.weights_file(config, "resnet18") is None  # the kernel has internet: timm's download
    offline = load_config(tmp_path, backend="ray", internet=False)
    assert RayBackend.weights_file(offline, "resnet18") == tmp_path / "datasets" / "timm-weights" / "resnet18.pth"
    (tmp_path / "datasets" / "timm-weights").mkdir(parents=True)
    (tmp_path / "datasets" / "timm-weights" / "resnet18.pth").write_bytes(b"weights")
    assert RayBackend.weights_file(config, "resnet18") == tmp_path / "datasets" / "timm-weights" / "resnet18.pth"


def test_the_address_must_be_a_job_server(tmp_path):
    with pytest.raises(NotConfigured, match="RAY_ADDRESS=http://HOST:8265"):
        address(load_config(tmp_path, backend="ray"))
    (tmp_path / "toolkit.toml").write_text('[ray]\naddress = "10.0.0.1:6379"\n')
    with pytest.raises(NotConfigured, match="not a job server's http address"):
        address(load_config(tmp_path))


def test_ray_failures_become_one_line_with_the_fix():
    class AuthenticationError(Exception):
        pass

    missing = translate(AuthenticationError("Missing authentication token"), "http://h:8265", "x", None)
    assert "asks for a token" in str(missing) and "ray get-auth-token" in str(missing)
    refused = translate(AuthenticationError("Invalid authentication token"), "http://h:8265", "x", ("t", "/t/tok"))
    assert str(refused).startswith("the Ray cluster at http://h:8265 refused the token from /t/tok")
    unreachable = translate(ConnectionError("Failed to connect"), "http://h:8265", "x", None)
    assert "cannot reach the Ray cluster at http://h:8265" in str(unreachable)
    assert "ray start --head" in str(unreachable)
    other = translate(RuntimeError("Request failed with status code 500: boom\nTraceback ..."), "http://h:8265",
                      "submit a job", None)
    assert str(other) == "the Ray cluster at http://h:8265 could not submit a job: Request failed with status code " \
                         "500: boom"


def test_an_unreachable_cluster_is_one_line(tmp_path):
    build_competition(tmp_path / "competitions", limit=40)
    done = console(tmp_path, "kpush", "train", "--arch", "resnet18", "--epochs", "1", "--backend", "ray",
                   RAY_ADDRESS="http://127.0.0.1:9", timeout=120)
    assert error_line(done) == ("error: cannot reach the Ray cluster at http://127.0.0.1:9 (start it (ray start "
                                "--head --num-gpus=N on the head node prints it) or point RAY_ADDRESS or [ray] "
                                "address at its job server)")
    assert done.returncode == 2


# -- a job's end, judged (a fake job server) -------------------------------------------------------------------

class FakeCluster:
    """The job server as the backend uses it: nodes, jobs by id, what was submitted and stopped."""

    address = "http://fake:8265"

    def __init__(self, nodes=(Node(1, 2),)):
        self.node_list, self.jobs, self.submitted, self.stopped = list(nodes), {}, [], []

    def nodes(self):
        return self.node_list

    def submit(self, job_id, entrypoint, gpus, cpus, metadata):
        self.submitted.append((job_id, gpus, cpus))
        self.jobs.setdefault(job_id, Job("PENDING"))

    def job(self, job_id):
        return self.jobs.get(job_id, Job(""))

    def stop(self, job_id):
        self.stopped.append(job_id)
        self.jobs[job_id] = Job("STOPPED")


@pytest.fixture
def ray(tmp_path):
    build_competition(tmp_path / "competitions", limit=40)
    (tmp_path / "toolkit.toml").write_text('[ray]\naddress = "http://fake:8265"\n')
    backend = RayBackend(load_config(tmp_path, backend="ray", username=USER))
    backend.cluster = FakeCluster()
    folder = write_kernel(tmp_path / "kernels", SLUG, "print('hi')", competition=DEMO, gpu=True, internet=False)
    return backend, folder


def _job_of(backend, version):
    return read_state(backend.root / "kernels" / SLUG / f"v{version}")["ray_job"]


def _runner_started(backend, version):
    run_dir = backend.root / "kernels" / SLUG / f"v{version}"
    write_state(run_dir, {**read_state(run_dir), "status": "RUNNING", "pid": 4242})


def test_a_push_lays_out_the_sandbox_and_submits_its_request(ray):
    backend, folder = ray
    pushed = backend.push(folder)
    job = _job_of(backend, 1)
    assert pushed == PushResult(1, f"http://fake:8265/#/jobs/{job}") and job.startswith(f"{SLUG}-v1-")
    assert backend.cluster.submitted == [(job, 1, 2.0)]
    run_dir = backend.root / "kernels" / SLUG / "v1"
    assert (run_dir / "input" / "competitions" / DEMO / "sample_submission.csv").exists()
    assert not (run_dir / "input" / "competitions" / DEMO / "solution.csv").exists()  # hidden from kernels
    assert backend.status(SLUG, 1) == KernelState(Status.QUEUED)
    backend.cluster.jobs[job] = Job("RUNNING")
    assert backend.status(SLUG, 1) == KernelState(Status.RUNNING)
    assert backend.find_pushed(SLUG, None).version == 1 and backend.find_pushed(SLUG, 1) is None


def test_an_ensemble_mounts_the_outputs_of_the_runs_on_the_shared_path(ray, tmp_path):
    backend, folder = ray
    backend.push(folder)
    run_dir = backend.root / "kernels" / SLUG / "v1"
    write_state(run_dir, {**read_state(run_dir), "status": "COMPLETE"})
    ensemble = write_kernel(tmp_path / "kernels", "ensemble-abc12345", "print(1)", competition=DEMO, gpu=False,
                            internet=False, kernel_sources=(f"{USER}/{SLUG}",))
    backend.push(ensemble)
    mounted = backend.root / "kernels" / "ensemble-abc12345" / "v1" / "input" / "notebooks" / USER / SLUG
    assert mounted.resolve() == (run_dir / "working").resolve()
    assert backend.cluster.submitted[-1][1:] == (0, 2.0)  # a CPU kernel: no GPU


def test_a_push_no_node_can_run_is_refused_before_anything_is_laid_out(ray):
    backend, folder = ray
    backend.cluster.node_list = [Node(0, 16)]
    with pytest.raises(BackendError, match="asks for 1 GPU and 2 CPUs on one node"):
        backend.push(folder)
    assert backend.cluster.submitted == [] and not (backend.root / "kernels" / SLUG).exists()


def test_a_lost_job_is_resubmitted_once_as_the_next_version(ray):
    backend, folder = ray
    backend.push(folder)
    _runner_started(backend, 1)
    backend.cluster.jobs[_job_of(backend, 1)] = Job("FAILED", "Job entrypoint command failed with exit code 137, "
                                                    "last available logs (truncated):\n...")
    state = backend.status(SLUG, 1)
    note = ("version 1 was lost to the cluster (Job entrypoint command failed with exit code 137): resubmitted as "
            "version 2")
    assert state.status == Status.ERROR and state.failure_message == note
    assert state.moved_to == PushResult(2, f"http://fake:8265/#/jobs/{_job_of(backend, 2)}")
    assert backend.status(SLUG, 1) == state and len(backend.cluster.submitted) == 2  # asked again: still once
    assert backend.status(SLUG, 2) == KernelState(Status.QUEUED, note)  # says so while it runs

    _runner_started(backend, 2)
    backend.cluster.jobs[_job_of(backend, 2)] = Job("FAILED", "Job supervisor actor died", "JOB_SUPERVISOR_ACTOR_DIED")
    again = backend.status(SLUG, 2)
    assert again == KernelState(Status.ERROR, "lost to the cluster again (Job supervisor actor died); resubmitted "
                                              "once already")
    assert len(backend.cluster.submitted) == 2 and backend.find_pushed(SLUG, None).version == 2


def test_the_runners_end_outranks_the_jobs(ray):
    backend, folder = ray
    backend.push(folder)
    run_dir = backend.root / "kernels" / SLUG / "v1"
    failed = {"pid": 1, "status": "ERROR", "failure_message": "In [1]: ValueError: x"}  # the runner's record
    write_state(run_dir, {**read_state(run_dir), **failed})
    backend.cluster.jobs[_job_of(backend, 1)] = Job("FAILED", "Job entrypoint command failed with exit code 1")
    assert backend.status(SLUG, 1) == KernelState(Status.ERROR, "In [1]: ValueError: x")  # its code: not resubmitted
    assert len(backend.cluster.submitted) == 1


def test_a_job_that_failed_before_the_kernel_started_is_an_error(ray):
    backend, folder = ray
    backend.push(folder)
    backend.cluster.jobs[_job_of(backend, 1)] = Job("FAILED", "Job entrypoint command failed with exit code 127",
                                                    "JOB_ENTRYPOINT_COMMAND_ERROR")
    state = backend.status(SLUG, 1)
    assert state.status == Status.ERROR and state.moved_to is None
    assert state.failure_message.startswith("the Ray job failed before the kernel started: Job entrypoint command "
                                            "failed with exit code 127")


def test_a_push_cut_off_before_its_job_was_submitted_submits_it_when_asked(ray):
    backend, folder = ray
    backend.push(folder)
    job = _job_of(backend, 1)
    backend.cluster.jobs.clear()  # the cluster never heard of it
    assert backend.status(SLUG, 1) == KernelState(Status.QUEUED)
    assert [s[0] for s in backend.cluster.submitted] == [job, job]  # the same id: Ray takes it once


def test_stops_by_the_user_and_on_the_cluster(ray):
    backend, folder = ray
    backend.push(folder)
    assert backend.stop(SLUG, 1) == KernelState(Status.CANCEL_ACKNOWLEDGED, "stopped by the user")
    assert backend.cluster.stopped == [_job_of(backend, 1)]
    assert backend.stop(SLUG, 1).status == Status.CANCEL_ACKNOWLEDGED and len(backend.cluster.stopped) == 1
    backend.push(folder)
    _runner_started(backend, 2)
    backend.cluster.jobs[_job_of(backend, 2)] = Job("STOPPED", "Job was intentionally stopped.")
    assert backend.status(SLUG, 2) == KernelState(Status.CANCEL_ACKNOWLEDGED,
                                                  "stopped on the cluster (Job was intentionally stopped)")


def test_the_registry_follows_a_resubmitted_version(tmp_path):
    config = load_config(tmp_path, backend="ray", username=USER)

    class Moving:
        name, queues, can_stop, runs_here, poll_s = "ray", True, True, False, (1.0, 1.0)

        def status(self, slug, version):
            if version == 1:
                return KernelState(Status.ERROR, "version 1 was lost: resubmitted as version 2", PushResult(2, "u2"))
            return KernelState(Status.RUNNING, "version 1 was lost: resubmitted as version 2")

    project = Project(config, backend=Moving())
    run = project.store.add_run(SLUG, "train", "ray", DEMO, "abc12345", {"arch": "resnet18"})
    project.store.record_push([run.id], 1, "u1")
    project.store.set_status(run.id, Status.RUNNING)
    (moved,) = refresh(project)
    assert (moved.status, moved.version, moved.url) == (Status.QUEUED, 2, "u2")
    assert moved.failure_message == "version 1 was lost: resubmitted as version 2"
    assert project.store.known_version(SLUG, "ray") == 2
    (running,) = refresh(project)
    assert (running.status, running.version) == (Status.RUNNING, 2)


# -- the node side ------------------------------------------------------------------------------------------

def test_kernels_on_the_nodes_see_no_credentials_and_cpu_kernels_no_gpu(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", "/secret/token")
    monkeypatch.setenv("KAGGLE_KEY", "secret")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    env = entrypoint.environment({"ray_ask": {"gpus": 0, "cpus": 2}})
    assert "RAY_AUTH_TOKEN_PATH" not in env and "KAGGLE_KEY" not in env and env["CUDA_VISIBLE_DEVICES"] == ""
    assert env["KAGGLE_KERNEL_RUN_TYPE"] == "Batch"
    assert entrypoint.environment({"ray_ask": {"gpus": 1, "cpus": 2}})["CUDA_VISIBLE_DEVICES"] == "0,1"  # Ray's pick


def test_a_jobs_log_is_what_the_kernel_printed():
    log = ("2030-01-01 00:00:00,001\tINFO job_manager.py:581 -- Runtime env is setting up.\n"
           "Running entrypoint for job x-v1-ab: python -m toolkit.backends.ray.entrypoint /s 60\nepoch 1\n")
    assert _own_lines(log) == "epoch 1\n"


# -- submissions --------------------------------------------------------------------------------------------

def test_a_file_is_scored_on_the_local_leaderboard_where_the_competition_has_its_solution(ray, tmp_path):
    backend, _ = ray
    sample = tmp_path / "competitions" / DEMO / "sample_submission.csv"
    since = time.time()
    sent = backend.submit(DEMO, sample, "ray ensemble v1")
    assert sent.status == "COMPLETE" and 0 <= sent.score <= 1
    assert backend.find_submission(DEMO, "ray ensemble v1", since - 1).ref == sent.ref
    assert json.loads((tmp_path / ".toolkit" / "local" / "submissions.json").read_text())[0]["ref"] == sent.ref
    with pytest.raises(BackendError, match="code competition"):
        backend.submit(DEMO, sample, "code", slug=SLUG, version=1)


def test_without_a_solution_the_file_goes_to_kaggle_through_its_client(tmp_path, start_emulator):
    emu = start_emulator()  # serves tmp_path/competitions, which has the hidden labels
    build_tiny_competition(tmp_path / "competitions")
    public = build_tiny_competition(tmp_path / "project" / "competitions")
    (public / "solution.csv").unlink()  # what the nodes read: no hidden labels here
    (tmp_path / "project" / "toolkit.toml").write_text('[ray]\naddress = "http://fake:8265"\n')
    backend = RayBackend(load_config(tmp_path / "project", backend="ray"))
    since = time.time()
    sent = backend.submit(COMP, public / "sample_submission.csv", "ray ensemble to kaggle")
    deadline = time.monotonic() + 30
    while (result := backend.submission(COMP, sent.ref)).status == "PENDING" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert result.status == "COMPLETE" and result.score == 0.5
    assert len(emu.calls("CreateSubmission")) == 1
    assert backend.find_submission(COMP, "ray ensemble to kaggle", since - 60).ref == sent.ref
    assert not (tmp_path / "project" / ".toolkit" / "local" / "submissions.json").exists()  # not scored here
