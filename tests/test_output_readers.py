"""Every reader of a training kernel's outputs goes through the output contract: kpull names what is missing or
malformed in one line, pack.json is read by its keys, and no reader asks for a metric the contract does not
define (a renamed metric fails here instead of showing "-")."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

from toolkit.backends.base import KernelState
from toolkit.core.config import load_config
from toolkit.core.errors import UnsafeOutput
from toolkit.core.status import Status
from toolkit.kernel import contract
from toolkit.project import Project
from toolkit.runs.outputs import fetch as collect
from toolkit.runs.outputs.loaded import Outputs
from toolkit.runs.outputs.results import result_rows
from toolkit.runs.watch.pack_results import member_states

ROOT = Path(__file__).resolve().parent.parent


class FilesBackend:
    """Serves the files of one folder as every kernel's outputs."""
    name, username, queues = "local", "me", True

    def __init__(self, working: Path):
        self.working = working

    def output(self, slug, version, dest, names):
        dest.mkdir(parents=True, exist_ok=True)
        for name in names:
            if (self.working / name).is_file():
                (dest / name).write_bytes((self.working / name).read_bytes())
        return [dest / n for n in names if (dest / n).is_file()]

    def logs(self, slug, version):
        return "log\n"


def _outputs(folder: Path, tta: dict | None = None, metrics: dict | None = None) -> None:
    """A training kernel's outputs; `tta` changes tta.pkl's keys (a value of ... removes the key)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {"probs": torch.rand(2, 2), "files": ["a.png", "b.png"], "vocab": ["x", "y"], "format": contract.FORMAT}
    data = {k: v for k, v in {**data, **(tta or {})}.items() if v is not ...}
    torch.save(data, folder / contract.TTA_FILE)
    (folder / contract.METRICS_FILE).write_text(json.dumps(metrics if metrics is not None else {"tta_error": 0.1}))


def _finished_run(tmp_path: Path):
    project = Project(load_config(tmp_path), backend=FilesBackend(tmp_path / "working"))
    run = project.store.add_run("resnet18-abcdef12", "train", "local", "digits-demo", "abcdef12",
                                {"arch": "resnet18", "competition": "digits-demo"})
    return project, project.store.set_status(run.id, Status.COMPLETE, version=1)


def test_kpull_takes_sound_outputs(tmp_path):
    _outputs(tmp_path / "working")
    project, run = _finished_run(tmp_path)
    assert collect.download(project, run).metrics == {"tta_error": 0.1}


@pytest.mark.parametrize("tta, metrics, message", [
    ({"vocab": ...}, None, "resnet18-abcdef12 v1 tta.pkl lacks vocab"),
    ({"probs": torch.rand(3, 2)}, None, "resnet18-abcdef12 v1 tta.pkl: probs is (3, 2) but there are 2 files"),
    (None, {"valid_error": 0.2}, "resnet18-abcdef12 v1 metrics.json lacks tta_error"),
    (None, {"tta_error": "x"}, "resnet18-abcdef12 v1 metrics.json: tta_error must be a number, not 'x'"),
    (None, {"tta_error": 0.1, "epochs": [{"phase": "train"}]},
     "resnet18-abcdef12 v1 metrics.json: epochs[0] lacks epoch, train_loss"),
    (None, {"tta_error": 0.1, "format": 99}, "resnet18-abcdef12 v1 metrics.json is format 99, newer than"),
])
def test_kpull_names_what_is_missing_or_malformed_in_one_line(tmp_path, tta, metrics, message):
    _outputs(tmp_path / "working", tta, metrics)
    project, run = _finished_run(tmp_path)
    with pytest.raises(UnsafeOutput) as info:
        collect.download(project, run)
    assert info.value.message.startswith(message) and "\n" not in info.value.message
    assert list((project.config.outputs_dir / run.slug).iterdir()) == []  # nothing kept that looks complete


def test_pack_results_read_pack_json_by_the_contract(tmp_path):
    working = tmp_path / "working"
    working.mkdir()
    project = Project(load_config(tmp_path), backend=FilesBackend(working))
    done = KernelState(Status.COMPLETE)
    (working / contract.PACK_FILE).write_text(json.dumps({
        "a": {"status": contract.PACK_COMPLETE, "exit_code": 0, "message": ""},
        "b": {"status": contract.PACK_ERROR, "exit_code": 1, "message": "ValueError: bad"}}))
    states = member_states(project, "pack-2-abcdef12", 1, done)
    assert states["a"].status == Status.COMPLETE and states["b"].status == Status.ERROR
    assert states["b"].failure_message == "ValueError: bad"
    (working / contract.PACK_FILE).write_text(json.dumps({"a": {"status": "FINE"}}))
    assert member_states(project, "pack-2-abcdef12", 1, done) == {}  # not the contract's: the kernel's state


def test_the_results_table_reads_metrics_of_their_kind_only(tmp_path):
    project, run = _finished_run(tmp_path)
    project.store.set_outputs(run.id, ".", {"tta_error": 0.2, "valid_error": "n/a", "train_seconds": 120})
    [row] = result_rows(project.store.runs(), Outputs(project))
    assert (row.tta_error, row.valid_error, row.gpu_minutes, row.output_mb) == (0.2, None, 2.0, None)


def _metric_calls() -> list[tuple[str, str, str]]:
    """(module, name, keys) of every contract.metric(..., "name"[, KEYS]) call in the toolkit."""
    found = []
    for path in (ROOT / "toolkit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "metric":
                name = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) else None
                keys = node.args[2].id if len(node.args) > 2 else "METRICS_KEYS"
                found.append((path.relative_to(ROOT).as_posix(), name, keys))
    return found


def test_readers_ask_only_for_metrics_the_contract_defines():
    calls = _metric_calls()
    readers = {module for module, _, _ in calls}
    assert {"toolkit/runs/outputs/results.py", "toolkit/runs/costs/estimate.py", "toolkit/ensembles/submit.py",
            "toolkit/ensembles/members.py"} <= readers
    for module, name, keys in calls:
        assert name in getattr(contract, keys), (module, name)


READERS = ("runs", "ensembles", "kernel", "reports")  # the packages that read outputs (kernel/runtime/ writes them)


@pytest.mark.parametrize("package", READERS)
def test_no_reader_reads_metrics_around_the_contract(package):
    """`run.metrics.get(...)` or `metrics["..."]` would read a key the contract may not define."""
    for path in (ROOT / "toolkit" / package).rglob("*.py"):
        if path.parent.name == "runtime" or path.name == "contract.py":
            continue  # the writer and the contract itself
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "get" and isinstance(node.value, ast.Attribute):
                assert node.value.attr != "metrics", path
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute):
                assert node.value.attr != "metrics", path
