"""The output contract (toolkit/kernel/contract.py): each file's checks name the file and what is missing or
malformed in one line, the metric accessor refuses names the contract does not define, the progress line
round-trips, and the module stays pasteable (stdlib only)."""

from __future__ import annotations

import ast
import json
import math
import sys

import pytest
import torch

from toolkit.core.errors import UnsafeOutput
from toolkit.core.status import Status
from toolkit.kernel import contract
from toolkit.kernel.contract import (FORMAT, OutputError, check_metrics, check_model_info, check_pack, check_tta,
                                     metric, parse_progress, progress_line, progress_record, require_validation)


def tta(**changes) -> dict:
    data = {"format": FORMAT, "probs": torch.rand(3, 2), "files": ["a.png", "b.png", "c.png"], "vocab": ["x", "y"],
            "spec": {"arch": "resnet18"}, "identity": {"slug": "r-1", "spec_hash": "1"}, "metrics": {},
            "valid_probs": torch.rand(2, 2), "valid_targets": torch.tensor([0, 1]), "valid_files": ["v1", "v2"]}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def metrics(**changes) -> dict:
    data = {"format": FORMAT, "arch": "resnet18", "tta_error": 0.25, "valid_error": 0.5,
            "epochs": [{"phase": "train", "epoch": 0, "train_loss": 1.0, "valid_loss": 1.1, "error_rate": 0.5,
                        "seconds": 3.0}], "gpu_name": None, "pretrained": False}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def test_the_file_names_are_defined_once():
    assert contract.TRAIN_OUTPUTS == ("tta.pkl", "metrics.json")
    assert contract.MODEL_OUTPUTS == ("model.pth", "model.json")
    assert contract.PACK_FILE == "pack.json"
    from toolkit.runs.outputs.fetch import TRAIN_OUTPUTS
    assert TRAIN_OUTPUTS is contract.TRAIN_OUTPUTS


def test_a_sound_tta_and_metrics_pass_unchanged():
    data = tta()
    assert check_tta(data) is data
    assert check_metrics(metrics()) == metrics()
    old = tta(format=..., spec=..., identity=..., metrics=..., valid_probs=..., valid_targets=..., valid_files=...)
    assert check_tta(old) is old  # outputs from before formats were numbered: only probs, files, vocab needed


@pytest.mark.parametrize("data, message", [
    (tta(vocab=...), "tta.pkl lacks vocab"),
    (tta(files=..., vocab=...), "tta.pkl lacks files, vocab"),
    ([1, 2], "tta.pkl holds list, not a dict of outputs"),
    (tta(probs=torch.rand(3)), "tta.pkl: probs must be a 2-D float tensor, not a 1-D torch.float32 tensor"),
    (tta(probs=torch.zeros(3, 2, dtype=torch.int64)), "tta.pkl: probs must be a 2-D float tensor, not a 2-D"),
    (tta(files=["a", 2, "c"]), "tta.pkl: files must be a list of text, not ['a', 2, 'c']"),
    (tta(probs=torch.rand(2, 2)), "tta.pkl: probs is (2, 2) but there are 3 files and 2 classes"),
    (tta(files=["a", "a", "b"]), "tta.pkl: a file name appears twice"),
    (tta(identity="r-1"), "tta.pkl: identity must be a dict, not 'r-1'"),
    (tta(valid_targets=torch.tensor([0.0, 1.0])), "tta.pkl: valid_targets must be a 1-D integer tensor"),
    (tta(valid_files=["v1"]), "tta.pkl: valid_probs has 2 rows for 1 valid_files"),
    (tta(valid_probs=torch.rand(2, 3)), "tta.pkl: valid_probs has 3 columns for 2 classes"),
    (tta(format=FORMAT + 1), f"tta.pkl is format {FORMAT + 1}, newer than this code reads ({FORMAT})"),
    (tta(format="1"), "tta.pkl: format must be an integer, not '1'"),
])
def test_a_malformed_tta_is_refused_in_one_line_naming_the_file(data, message):
    with pytest.raises(OutputError) as info:
        check_tta(data)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


@pytest.mark.parametrize("data, message", [
    (metrics(tta_error=...), "metrics.json lacks tta_error"),
    (metrics(tta_error="x"), "metrics.json: tta_error must be a number, not 'x'"),
    (metrics(tta_error=True), "metrics.json: tta_error must be a number, not True"),
    (metrics(pretrained=1), "metrics.json: pretrained must be true or false, not 1"),
    (metrics(arch=None), "metrics.json: arch must be text, not None"),
    (metrics(epochs={"a": 1}), "metrics.json: epochs must be a list of dicts"),
    (metrics(epochs=[{"phase": "train"}]), "metrics.json: epochs[0] lacks epoch, train_loss, valid_loss"),
    ("[]", "metrics.json holds str, not a dict"),
])
def test_malformed_metrics_are_refused_in_one_line(data, message):
    with pytest.raises(OutputError) as info:
        check_metrics(data)
    assert str(info.value).startswith(message)


def test_readers_choose_the_name_and_the_error():
    with pytest.raises(UnsafeOutput) as info:
        check_metrics(metrics(tta_error=...), "resnet18-abc v2 metrics.json", UnsafeOutput)
    assert info.value.message == "resnet18-abc v2 metrics.json lacks tta_error"
    with pytest.raises(UnsafeOutput, match="r-1's tta.pkl lacks valid_probs, valid_targets, valid_files"):
        require_validation(tta(valid_probs=..., valid_targets=..., valid_files=...), "r-1's tta.pkl", UnsafeOutput)


def test_nan_and_null_where_allowed():
    assert check_metrics(metrics(tta_error=math.nan, gpu_name=None, peak_gpu_mem_gb=None))
    with pytest.raises(OutputError, match="gpu_name must be text, not 3"):
        check_metrics(metrics(gpu_name=3))


def test_model_info_and_pack():
    info = {"arch": "resnet18", "vocab": ["a"], "identity": None, "item": "Resize(8)", "batch": None,
            "normalize": [[0.5, 0.5, 0.5], [0.2, 0.2, 0.2]]}
    assert check_model_info(info) is info
    assert check_model_info({**info, "normalize": None})
    with pytest.raises(OutputError, match=r"model.json: normalize must be \[means, stds\]"):
        check_model_info({**info, "normalize": [[0.5]]})
    pack = {"a": {"status": "COMPLETE", "exit_code": 0, "message": ""},
            "b": {"status": "ERROR", "exit_code": -9, "message": "killed"}}
    assert check_pack(pack) is pack
    with pytest.raises(OutputError, match="pack.json: b: status must be COMPLETE or ERROR, not 'FAILED'"):
        check_pack({**pack, "b": {"status": "FAILED"}})
    with pytest.raises(OutputError, match="pack.json: a lacks status"):
        check_pack({"a": {}})
    assert (contract.PACK_COMPLETE, contract.PACK_ERROR) == (Status.COMPLETE.value, Status.ERROR.value)


def test_metric_reads_defined_names_and_refuses_others():
    m = metrics(minutes_per_epoch="slow")
    assert metric(m, "tta_error") == 0.25
    assert metric(m, "output_mb") is None  # not measured (an older run on record)
    assert metric(m, "minutes_per_epoch") is None  # not of its kind
    assert metric(None, "tta_error") is None
    with pytest.raises(KeyError, match="'tta_err' is not defined by the output contract"):
        metric(m, "tta_err")
    row = m["epochs"][0]
    assert metric(row, "error_rate", contract.EPOCH_KEYS) == 0.5
    with pytest.raises(KeyError):
        metric(row, "error", contract.EPOCH_KEYS)


def test_progress_lines_round_trip():
    record = progress_record("training", epoch=2, epochs=5, train_loss=0.5, valid_loss=0.6, error_rate=0.1,
                             seconds=12.5)
    line = progress_line(record)
    assert line.startswith("toolkit-progress {") and "\n" not in line
    assert parse_progress(line) == record
    assert parse_progress("  " + line + "\n") == record
    phase = progress_line(progress_record("tta"))
    assert parse_progress(phase) == {**progress_record("tta"), "phase": "tta"}
    assert json.loads(phase.split(" ", 1)[1])["epoch"] is None


@pytest.mark.parametrize("line", [
    "train epoch  0  train_loss 1.0", "toolkit-progress", "toolkit-progress {not json",
    'toolkit-progress {"phase": "training"}', 'toolkit-progress ["training"]',
    progress_line(progress_record("tta")).replace('"tta"', '"dancing"'),
    progress_line(progress_record("tta")).replace('"epoch":null', '"epoch":"two"'),
    "[resnet18-abc] " + progress_line(progress_record("tta")),  # a pack's prefix is the reader's to take off
])
def test_other_lines_are_not_progress(line):
    assert parse_progress(line) is None


def test_progress_line_refuses_an_unknown_phase():
    with pytest.raises(OutputError, match="phase must be one of frozen, training, tta, outputs"):
        progress_line(progress_record("train"))


def test_the_contract_is_pasteable():
    """Stdlib only and no __future__ import: it is pasted into kernels, where the toolkit is not installed."""
    tree = ast.parse(open(contract.__file__).read())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names), imported
    assert "__future__" not in imported
