"""A run's outputs, owned in one place: each finished run's tta.pkl and metrics.json are read once per command
(`Outputs.of`), checked against the output contract on the way in, and handed as one typed value to everything
that reads them: the results table, the report, member selection and the ensemble kernel's checksums. An output
that is refused (not plain data, or breaking the contract) makes that one run ERROR with one short line; the
others go on."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.core.errors import OutputsBroken, ToolkitError, UnsafeOutput
from toolkit.core.status import Status
from toolkit.kernel import contract
from toolkit.project import Project
from toolkit.registry.records import Run


@dataclass(frozen=True)
class Validation:
    """A run's TTA predictions on its validation images; targets are indices into its own vocab."""

    files: list[str]
    probs: Any  # float tensor, validation images x classes
    targets: list[int]


@dataclass(frozen=True)
class RunOutputs:
    """One run's outputs as every reader takes them."""

    slug: str
    folder: Path
    files: list[str]  # test image names, in row order
    vocab: list[str]  # class names, in column order
    probs: Any  # float tensor, test images x classes
    validation: Validation | None  # None: an older run, or a template that did not save them
    metrics: dict
    identity: dict | None
    sha256: str  # of tta.pkl: the ensemble kernel checks that it finds this very file

    def validation_on(self, files: list[str], vocab: list[str]) -> tuple[Any, list[int]]:
        """Validation probabilities and targets, rows in `files` order and columns in `vocab` order."""
        from toolkit.kernel.runtime.ensemble import reorder

        own = self.validation
        rows = {f: i for i, f in enumerate(own.files)}
        targets = [vocab.index(self.vocab[own.targets[rows[f]]]) for f in files]
        return reorder(own.probs, own.files, self.vocab, files, vocab), targets


def read(folder: Path, label: str, slug: str, max_bytes: int | None = None, error: type = OutputsBroken) -> RunOutputs:
    """The outputs in `folder` of run `slug`, checked: every file the contract names, tta.pkl as data only,
    metrics.json; `label` names the run in messages."""
    from toolkit.kernel.runtime.ensemble import tta_from_bytes

    missing = [n for n in contract.TRAIN_OUTPUTS if not (folder / n).is_file()]
    if missing:
        raise error(f"{label} has no {', '.join(missing)}",
                    "a template must write every output: save_learner(learn, test_files) does")
    tta_path = folder / contract.TTA_FILE
    if max_bytes is not None and tta_path.stat().st_size > max_bytes:
        raise UnsafeOutput(f"{label} {contract.TTA_FILE} is {tta_path.stat().st_size} bytes, over the "
                           f"{max_bytes}-byte limit", "raise max_output_mb in toolkit.toml if this is expected")
    raw = tta_path.read_bytes()  # read once: loaded as data, and its checksum (the ensemble kernel checks it)
    data = tta_from_bytes(raw, f"{label} {contract.TTA_FILE}", error)
    metrics = contract.check_metrics(read_json(folder / contract.METRICS_FILE, label, error),
                                     f"{label} {contract.METRICS_FILE}", error)
    has_validation = all(k in data for k in contract.VALIDATION_KEYS)
    validation = Validation([str(f) for f in data["valid_files"]], data["valid_probs"].float(),
                            [int(t) for t in data["valid_targets"]]) if has_validation else None
    return RunOutputs(slug, folder, [str(f) for f in data["files"]], [str(v) for v in data["vocab"]],
                      data["probs"].float(), validation, metrics, data.get("identity"), hashlib.sha256(raw).hexdigest())


def read_json(path: Path, label: str, error: type = OutputsBroken) -> dict:
    """A JSON object file of a run's outputs (one line naming it when it is not one)."""
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise error(f"{label} {path.name} is not valid JSON") from None
    if not isinstance(data, dict):
        raise error(f"{label} {path.name} does not hold a JSON object")
    return data


class Outputs:
    """The outputs of one command's runs, each read once: from the folder a download just checked, else from
    the run's folder on disk. A run whose outputs are refused is recorded ERROR (`refused` keeps it)."""

    def __init__(self, project: Project):
        self.project = project
        self._read: dict[tuple[str, int | None], RunOutputs | None] = {}
        self.refused: dict[str, Run] = {}

    def keep(self, run: Run, outputs: RunOutputs) -> None:
        """What a download checked: the command reads it from here, not from disk again."""
        self._read[(run.slug, run.version)] = outputs

    def of(self, run: Run) -> RunOutputs | None:
        """The run's outputs, or None where it has none to read (not finished, not downloaded, refused)."""
        key = (run.slug, run.version)
        if key not in self._read:
            self._read[key] = self._load(run)
        return self._read[key]

    def _load(self, run: Run) -> RunOutputs | None:
        folder = self.project.run_folder(run)
        if run.status != Status.COMPLETE or folder is None or not (folder / contract.TTA_FILE).is_file():
            return None
        try:
            return read(folder, f"{run.slug} v{run.version}", run.slug, self.project.config.max_output_mb * 2**20)
        except ToolkitError as exc:  # refused (UnsafeOutput), broken (OutputsBroken), unreadable
            self.refused[run.slug] = self.project.store.refuse_outputs(run.id, refusal(exc))
            return None

    def current(self, run: Run) -> Run:
        """The run as it stands after reading: ERROR where its outputs were refused."""
        return self.refused.get(run.slug, run)


def refusal(exc: ToolkitError) -> str:
    """The failure message of a run whose outputs were refused."""
    return f"outputs break the contract: {exc.message}" if isinstance(exc, OutputsBroken) else \
        f"outputs refused: {exc.message}"
