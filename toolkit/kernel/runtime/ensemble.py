"""Load TTA outputs safely, align them by test file name and class name, average, write a submission.

This module runs in two places: in the toolkit, and pasted into the ensemble kernel that
runs on Kaggle (where the toolkit is not installed). So it imports only torch and the stdlib.
"""

import csv
import hashlib
import io
import pickle
import warnings
from pathlib import Path

import torch

from ..contract import check_tta
from .inputs import dataset_file, find_input

try:
    from toolkit.core.errors import EnsembleError, UnsafeOutput
except ImportError:  # inside a kernel: same names, plain exceptions
    class EnsembleError(ValueError):
        pass

    class UnsafeOutput(ValueError):
        pass


def load_tta(path: Path, max_bytes: int | None = None, name: str | None = None, error=EnsembleError) -> dict:
    """Load a tta.pkl as data only (torch's weights-only unpickler refuses anything that runs code), checked
    against the output contract. `name`: what messages call the file (default its path); `error`: what a
    file that breaks the contract raises."""
    path = Path(path)
    name = name or str(path)
    if not path.is_file():
        raise EnsembleError(f"{name} does not exist", "did the training kernel finish and its outputs download?")
    if max_bytes is not None and path.stat().st_size > max_bytes:
        raise UnsafeOutput(f"{name} is {path.stat().st_size} bytes, over the {max_bytes}-byte limit",
                           "raise max_output_mb in toolkit.toml if this file is expected")
    return tta_from_bytes(path.read_bytes(), name, error)


def tta_from_bytes(raw: bytes, name: str, error=EnsembleError) -> dict:
    """A tta.pkl's bytes loaded as data only, checked against the output contract (see load_tta)."""
    try:
        with warnings.catch_warnings():  # torch's own warnings are not the user's business here
            warnings.simplefilter("ignore")
            data = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's message advises loading it unsafely: never repeated
        raise UnsafeOutput(f"{name} is not plain data (loading it would run code), so it was not loaded",
                           "only tensors, numbers and strings are accepted") from None
    except (RuntimeError, EOFError, ValueError, AttributeError, OSError) as exc:
        raise UnsafeOutput(f"{name} cannot be read as a TTA output ({type(exc).__name__})",
                           "a training kernel writes it with torch.save; download it again") from None
    return check_tta(data, name, error)


def check_output(data: object, name: str) -> dict:
    """A loaded tta.pkl as the ensemble needs it: the output contract's check, failing as an EnsembleError."""
    return check_tta(data, name, EnsembleError)


def member_outputs(member: dict) -> tuple[Path, dict]:
    """Where an ensemble member's outputs are (found among the kernel's inputs: its training kernel's outputs, or
    its folder in the members' dataset) and its tta.pkl, refused unless they are the very run (and version) the
    ensemble was made for."""
    path = member_tta(member)  # found among the inputs: it exists
    raw = path.read_bytes()  # read once: loaded as data, and its checksum
    data = tta_from_bytes(raw, str(path))
    if data.get("identity") != member["identity"]:
        raise EnsembleError(f"{path} belongs to run {data.get('identity')}, not {member['identity']}")
    if hashlib.sha256(raw).hexdigest() != member["sha256"]:
        source = member.get("source")
        raise EnsembleError(f"{path} is not version {member['version']} of {source or member['name']}: Kaggle "
                            f"attached another version (it attaches a {'kernel' if source else 'dataset'}'s latest); "
                            "ensemble again once it is pulled")
    return path.parent, data


def member_tta(member: dict) -> Path:
    """A member's tta.pkl in whichever mount holds it: its kernel's outputs (`source`), or the members' dataset
    (`dataset`); the first that has it."""
    places = [(kind, member.get(key)) for kind, key in (("notebooks", "source"), ("datasets", "dataset"))]
    places = [(kind, ref) for kind, ref in places if ref]
    for number, (kind, ref) in enumerate(places, 1):
        try:
            if kind == "datasets":
                return dataset_file(ref, member["tta"])
            return find_input(kind, ref, member["tta"]) / member["tta"]
        except FileNotFoundError:
            if number == len(places):
                raise
    raise EnsembleError(f"member {member['name']} names neither a kernel source nor a dataset")


def align(outputs: list[dict], names: list[str]) -> tuple[list[str], list[str], list[torch.Tensor]]:
    """Reorder every member's rows and columns to one order: sorted file names, sorted class names."""
    if not outputs:
        raise EnsembleError("no ensemble members", "train and pull at least one run first")
    files, vocab = sorted(outputs[0]["files"]), sorted(outputs[0]["vocab"])
    aligned = []
    for out, name in zip(outputs, names):
        _same_set("test files", files, out["files"], names[0], name)
        _same_set("classes", vocab, out["vocab"], names[0], name)
        aligned.append(reorder(out["probs"], out["files"], out["vocab"], files, vocab))
    return files, vocab, aligned


def reorder(probs, own_files, own_vocab, files, vocab):
    """A run's probabilities with rows in `files` order and columns in `vocab` order: the one alignment, by
    file and class name, that every reader of TTA outputs uses."""
    rows = {f: i for i, f in enumerate(own_files)}
    cols = {c: i for i, c in enumerate(own_vocab)}
    return probs.float()[[rows[f] for f in files]][:, [cols[c] for c in vocab]]


def _same_set(what: str, reference: list[str], other: list[str], ref_name: str, name: str) -> None:
    ref_set, other_set = set(reference), set(other)
    if ref_set == other_set:
        return
    only_ref, only_other = sorted(ref_set - other_set), sorted(other_set - ref_set)
    detail = []
    if only_ref:
        detail.append(f"{len(only_ref)} only in {ref_name} (e.g. {only_ref[0]})")
    if only_other:
        detail.append(f"{len(only_other)} only in {name} (e.g. {only_other[0]})")
    raise EnsembleError(f"members disagree on {what}: {'; '.join(detail)}",
                        "ensemble only runs trained on the same competition data")


def average(outputs: list[dict], names: list[str], weights: list[float] | None = None):
    """Weighted mean of aligned probabilities; returns (files, vocab, probs)."""
    files, vocab, aligned = align(outputs, names)
    if weights is None:
        weights = [1.0] * len(aligned)
    if len(weights) != len(aligned) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise EnsembleError(f"need {len(aligned)} non-negative weights with a positive sum, got {weights}")
    total = sum(weights)
    mean = sum(w * p for w, p in zip(weights, aligned)) / total
    return files, vocab, mean


def write_submission(files: list[str], vocab: list[str], probs: torch.Tensor,
                     sample_csv: Path, out_csv: Path) -> int:
    """Write predictions in the row order of sample_submission.csv; every id must have a prediction."""
    with open(sample_csv, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or len(rows[0]) < 2:
        raise EnsembleError(f"{sample_csv} must have a header with an id column and a label column")
    header, ids = rows[0][:2], [r[0] for r in rows[1:] if r]
    index = {f: i for i, f in enumerate(files)}
    missing = [i for i in ids if i not in index]
    twice = len(ids) - len(set(ids))
    if missing or twice or len(ids) != len(files):
        extra = len(files) - len(set(ids) - set(missing))
        raise EnsembleError(f"{sample_csv.name} and the predictions disagree: {len(missing)} ids without a "
                            f"prediction{f' (e.g. {missing[0]})' if missing else ''}, {extra} predictions "
                            f"without an id{f', {twice} ids listed twice' if twice else ''}")
    labels = probs.argmax(dim=1).tolist()
    tmp = Path(out_csv).with_suffix(".csv.partial")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows([i, vocab[labels[index[i]]]] for i in ids)
    tmp.replace(out_csv)
    return len(ids)

