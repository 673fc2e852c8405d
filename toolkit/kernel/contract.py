"""What a training kernel writes, defined once: the file names, each file's keys with their kinds and whether
readers need them, the format version, and the progress line its epoch logger prints.

The kernel's writer (runtime/outputs.py) and every reader (kpull's check, the ensemble kernel, member selection,
the results table, estimates, packs) go through this module, so a renamed key fails a test instead of silently
showing "-". Plain Python, stdlib only: it is pasted into kernels too (see render.runtime_source), where the
toolkit is not installed.
"""

import json
from collections import namedtuple

FORMAT = 1  # written into tta.pkl and metrics.json as `format`; raise it when a key changes meaning

TTA_FILE, METRICS_FILE = "tta.pkl", "metrics.json"
MODEL_FILE, MODEL_INFO_FILE = "model.pth", "model.json"
PACK_FILE = "pack.json"
TRAIN_OUTPUTS = (TTA_FILE, METRICS_FILE)  # what is downloaded and checked for every training run
MODEL_OUTPUTS = (MODEL_FILE, MODEL_INFO_FILE)  # what a predicting ensemble reads from the kernel's outputs

# One key of a file: its kind (a name in KINDS), whether a reader refuses a file without it, whether null is
# allowed. The writer writes every key; `required` is what older or hand-made files must still have.
Key = namedtuple("Key", "kind required nullable", defaults=(False, False))


class OutputError(ValueError):
    """An output file that does not follow the contract (a reader may pass its own error type instead)."""


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _tensor(value, ndim, floating):
    # Duck-typed so this module needs no torch: a tensor's ndim and dtype kind.
    return (hasattr(value, "ndim") and hasattr(value, "is_floating_point") and value.ndim == ndim
            and bool(value.is_floating_point()) == floating)


def _texts(value):
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)


KINDS = {  # kind -> (test, what the error says a value must be)
    "text": (lambda v: isinstance(v, str), "text"),
    "integer": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "number": (_number, "a number"),
    "flag": (lambda v: isinstance(v, bool), "true or false"),
    "dict": (lambda v: isinstance(v, dict), "a dict"),
    "texts": (_texts, "a list of text"),
    "rows": (lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v), "a list of dicts"),
    "float matrix": (lambda v: _tensor(v, 2, True), "a 2-D float tensor"),
    "int vector": (lambda v: _tensor(v, 1, False), "a 1-D integer tensor"),
    "stats": (lambda v: isinstance(v, list) and len(v) == 2 and all(
        isinstance(s, list) and all(_number(x) for x in s) for s in v), "[means, stds], two lists of numbers"),
}

TTA_KEYS = {
    "format": Key("integer"),  # absent in outputs written before formats were numbered
    "probs": Key("float matrix", True),  # test-set TTA probabilities: a row per file, a column per class
    "files": Key("texts", True),  # test files relative to test_images/, in row order
    "vocab": Key("texts", True),  # class names, in column order
    "spec": Key("dict", nullable=True),  # the run spec the kernel was rendered from
    "identity": Key("dict", nullable=True),  # {slug, spec_hash}: which run these are (the ensemble checks it)
    "metrics": Key("dict"),  # metrics.json's keys but output_mb (measured after this file is written)
    "valid_probs": Key("float matrix"),  # validation-set TTA probabilities (greedy selection)
    "valid_targets": Key("int vector"),  # validation labels, indices into vocab
    "valid_files": Key("texts"),  # validation files relative to train_images/, in row order
}
VALIDATION_KEYS = ("valid_probs", "valid_targets", "valid_files")

METRICS_KEYS = {
    "format": Key("integer"),
    "arch": Key("text"),
    "epochs": Key("rows"),  # one row per epoch, EPOCH_KEYS each
    "valid_error": Key("number"),  # error rate of the last epoch, without TTA
    "tta_error": Key("number", True),  # error rate of TTA on the validation set: what runs are ranked by
    "minutes_per_epoch": Key("number"),  # mean over the epochs after the frozen one
    "train_seconds": Key("number"),
    "precision": Key("text"),  # what ran: fp32 without a GPU, fp16 where bf16 has no units
    "pretrained": Key("flag"),
    "pipeline": Key("text"),  # 'fast' or 'seed'
    "channels_last": Key("flag"),
    "weights": Key("text"),  # 'file' (an attached dataset), 'hub' or 'none'
    "n_train": Key("integer"),
    "n_valid": Key("integer"),
    "n_test": Key("integer"),
    "tta_seconds_per_image": Key("number"),  # what a code competition's rerun pays per test image
    "gpu_name": Key("text", nullable=True),
    "peak_gpu_mem_gb": Key("number", nullable=True),
    "versions": Key("dict"),  # python, torch, fastai, timm
    "output_mb": Key("number"),  # everything the kernel wrote, the model included (metrics.json only)
}
EPOCH_KEYS = {
    "phase": Key("text", True),  # EPOCH_PHASES
    "epoch": Key("integer", True),  # from 0 within its fit
    "train_loss": Key("number", True),
    "valid_loss": Key("number", True),
    "error_rate": Key("number", True),
    "seconds": Key("number", True),
}
EPOCH_PHASES = ("frozen", "train")  # a fine-tune's frozen epoch, then the epochs that train everything

MODEL_INFO_KEYS = {  # how to rebuild the model from model.pth without the toolkit
    "arch": Key("text", True),
    "vocab": Key("texts", True),
    "identity": Key("dict", nullable=True),
    "item": Key("text", nullable=True),
    "batch": Key("text", nullable=True),
    "normalize": Key("stats", True, nullable=True),
}

PACK_COMPLETE, PACK_ERROR = "COMPLETE", "ERROR"  # the registry's status names
PACK_KEYS = {  # pack.json: run slug -> one of these each
    "status": Key("text", True),
    "exit_code": Key("integer", nullable=True),
    "message": Key("text"),  # the failure's cause, '' for a finished run
}


def _shown(value):
    """A value as an error message shows it: tensors by shape, others by a short repr."""
    if hasattr(value, "ndim") and hasattr(value, "dtype"):
        return f"a {value.ndim}-D {value.dtype} tensor"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_keys(data, keys, name, error=OutputError):
    """Refuse `data` unless it is a dict holding every required key, each present key of its kind."""
    if not isinstance(data, dict):
        raise error(f"{name} holds {type(data).__name__}, not a dict of outputs")
    missing = [k for k, key in keys.items() if key.required and k not in data]
    if missing:
        raise error(f"{name} lacks {', '.join(missing)}")
    for k, key in keys.items():
        value = data.get(k)
        if k in data and not (value is None and key.nullable) and not KINDS[key.kind][0](value):
            raise error(f"{name}: {k} must be {KINDS[key.kind][1]}, not {_shown(value)}")
    if "format" in keys and data.get("format", FORMAT) > FORMAT:
        raise error(f"{name} is format {data['format']}, newer than this code reads ({FORMAT}): upgrade the toolkit")
    return data


def check_tta(data, name=TTA_FILE, error=OutputError):
    """A loaded tta.pkl: the contract's keys, and probabilities that fit their file and class names."""
    check_keys(data, TTA_KEYS, name, error)
    probs, files, vocab = data["probs"], data["files"], data["vocab"]
    if tuple(probs.shape) != (len(files), len(vocab)):
        raise error(f"{name}: probs is {tuple(probs.shape)} but there are {len(files)} files and {len(vocab)} classes")
    for label, items in (("file", files), ("class", vocab), ("validation file", data.get("valid_files", []))):
        if len(set(items)) != len(items):
            raise error(f"{name}: a {label} name appears twice")
    _check_validation(data, name, error)
    return data


def _check_validation(data, name, error):
    """Validation predictions, where present, fit each other and the classes."""
    probs, targets, files = (data.get(k) for k in VALIDATION_KEYS)
    if probs is not None and probs.shape[1] != len(data["vocab"]):
        raise error(f"{name}: valid_probs has {probs.shape[1]} columns for {len(data['vocab'])} classes")
    for key, rows in (("valid_probs", probs), ("valid_targets", targets)):
        if rows is not None and files is not None and len(rows) != len(files):
            raise error(f"{name}: {key} has {len(rows)} rows for {len(files)} valid_files")


def require_validation(data, name=TTA_FILE, error=OutputError):
    """A tta.pkl that must hold validation predictions (greedy selection compares runs on them)."""
    missing = [k for k in VALIDATION_KEYS if k not in data]
    if missing:
        raise error(f"{name} lacks {', '.join(missing)}")
    return data


def check_metrics(metrics, name=METRICS_FILE, error=OutputError):
    """A loaded metrics.json: the contract's keys, and epoch rows that each hold EPOCH_KEYS."""
    check_keys(metrics, METRICS_KEYS, name, error)
    for i, row in enumerate(metrics.get("epochs", [])):
        check_keys(row, EPOCH_KEYS, f"{name}: epochs[{i}]", error)
    return metrics


def check_model_info(info, name=MODEL_INFO_FILE, error=OutputError):
    return check_keys(info, MODEL_INFO_KEYS, name, error)


def check_pack(data, name=PACK_FILE, error=OutputError):
    """A loaded pack.json: run slug -> {status, exit_code, message}, status COMPLETE or ERROR."""
    if not isinstance(data, dict):
        raise error(f"{name} holds {type(data).__name__}, not a dict of runs")
    for slug, entry in data.items():
        check_keys(entry, PACK_KEYS, f"{name}: {slug}", error)
        if entry["status"] not in (PACK_COMPLETE, PACK_ERROR):
            raise error(f"{name}: {slug}: status must be {PACK_COMPLETE} or {PACK_ERROR}, "
                        f"not {_shown(entry['status'])}")
    return data


def metric(metrics, name, keys=METRICS_KEYS):
    """metrics[name] where it has the contract's kind, else None (a run on record from before it was measured).
    A name the contract does not define is refused, so a reader cannot ask for a key no kernel writes."""
    if name not in keys:
        raise KeyError(f"{name!r} is not defined by the output contract (one of: {', '.join(keys)})")
    value = metrics.get(name) if isinstance(metrics, dict) else None
    return value if value is not None and KINDS[keys[name].kind][0](value) else None


# -- the progress line ------------------------------------------------------------------------------------------

PROGRESS_PREFIX = "toolkit-progress "
PROGRESS_PHASES = ("frozen", "training", "tta", "outputs")
# Every line carries every key. An epoch line (phase frozen or training): its epoch (from 0 within the phase),
# the phase's total epochs, the recorder's numbers and the epoch's seconds. A phase line, printed when a phase
# starts: epoch and the numbers null (epochs is the phase's total where it has epochs).
PROGRESS_KEYS = {
    "phase": Key("text", True),
    "epoch": Key("integer", True, True),
    "epochs": Key("integer", True, True),
    "train_loss": Key("number", True, True),
    "valid_loss": Key("number", True, True),
    "error_rate": Key("number", True, True),
    "seconds": Key("number", True, True),
}


def progress_record(phase, epoch=None, epochs=None, train_loss=None, valid_loss=None, error_rate=None, seconds=None):
    return dict(phase=phase, epoch=epoch, epochs=epochs, train_loss=train_loss, valid_loss=valid_loss,
                error_rate=error_rate, seconds=seconds)


def progress_line(record):
    """`toolkit-progress {json}`: one line a log reader can parse while the kernel runs."""
    check_keys(record, PROGRESS_KEYS, "progress record")
    if record["phase"] not in PROGRESS_PHASES:
        raise OutputError(f"progress record: phase must be one of {', '.join(PROGRESS_PHASES)}, "
                          f"not {record['phase']!r}")
    return PROGRESS_PREFIX + json.dumps({k: record[k] for k in PROGRESS_KEYS}, separators=(",", ":"))


def parse_progress(line):
    """The record of a progress line, or None for any other line (a log line is never an error). A packed run's
    lines carry the pack's `[slug] ` prefix: take it off first."""
    line = line.strip()
    if not line.startswith(PROGRESS_PREFIX):
        return None
    try:
        record = json.loads(line[len(PROGRESS_PREFIX):])
        check_keys(record, PROGRESS_KEYS, "progress record")
    except (ValueError, TypeError):  # OutputError is a ValueError, as is bad JSON
        return None
    return record if record["phase"] in PROGRESS_PHASES else None
