"""The results table: one row per training run, best TTA error first; rich, csv, json or markdown."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from toolkit.kernel.contract import metric
from toolkit.registry.records import Run
from toolkit.runs.outputs.loaded import Outputs, RunOutputs
from toolkit.specs.params import describe

COLUMNS = ("slug", "arch", "template", "params", "item_tfms", "batch_tfms", "epochs", "valid_error", "tta_error",
           "min_per_epoch", "gpu_minutes", "output_mb", "test_accuracy", "status")
# Shown in tables only when some row has one (most runs use the shipped template and no parameters).
OPTIONAL = ("template", "params", "test_accuracy")


@dataclass(frozen=True)
class ResultRow:
    slug: str
    arch: str
    template: str  # the user's template ('' = the shipped one)
    params: dict  # its free parameters
    item_tfms: str | None  # None: the template's own
    batch_tfms: str | None
    epochs: int | None
    valid_error: float | None
    tta_error: float | None
    min_per_epoch: float | None
    gpu_minutes: float | None  # training time the kernel measured (train_seconds), in minutes
    output_mb: float | None  # what the kernel left in its outputs (the model included), against Kaggle's 20 GB
    test_accuracy: float | None
    status: str


# Short headers for tables people read (exports keep the field names), and the columns that hold numbers.
HEADERS = {"item_tfms": "item", "batch_tfms": "batch", "valid_error": "valid err", "tta_error": "TTA err",
           "min_per_epoch": "min/epoch", "gpu_minutes": "GPU min", "output_mb": "out MB", "test_accuracy": "test acc"}
NUMERIC = {"epochs", "valid_error", "tta_error", "min_per_epoch", "gpu_minutes", "output_mb", "test_accuracy"}


def result_rows(runs: list[Run], outputs: Outputs, solution: Path | None = None) -> list[ResultRow]:
    """Rows sorted by TTA error (unfinished runs last). `solution` scores each run's own test predictions."""
    rows = []
    for run in runs:
        m = run.metrics
        rows.append(ResultRow(
            slug=run.slug, arch=run.spec.arch, template=run.spec.template, params=dict(run.spec.params),
            item_tfms=run.spec.item, batch_tfms=run.spec.batch, epochs=run.spec.epochs,
            valid_error=metric(m, "valid_error"), tta_error=metric(m, "tta_error"),
            min_per_epoch=metric(m, "minutes_per_epoch"), gpu_minutes=_minutes(metric(m, "train_seconds")),
            output_mb=metric(m, "output_mb"), test_accuracy=_test_accuracy(outputs.of(run), solution),
            status=outputs.current(run).status.value))
    return sorted(rows, key=lambda r: (r.tta_error is None, r.tta_error or 0.0, r.slug))


def _minutes(seconds: float | None) -> float | None:
    return float(seconds) / 60 if seconds is not None else None


def _test_accuracy(outputs: RunOutputs | None, solution: Path | None) -> float | None:
    if solution is None or not solution.is_file() or outputs is None:  # outputs/ may have been deleted
        return None
    from toolkit.competitions.scoring import probs_accuracy

    return probs_accuracy(outputs.files, outputs.vocab, outputs.probs, solution)


def fmt_value(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return describe(value)
    return str(value)


def shown_columns(rows: list[ResultRow]) -> list[str]:
    """COLUMNS, less the optional ones no row has."""
    return [c for c in COLUMNS if c not in OPTIONAL or any(getattr(r, c) not in (None, "", {}) for r in rows)]


def export(rows: list[ResultRow], fmt: str, extra: dict[str, dict] | None = None) -> str:
    """csv, md, or json (`extra`: more keys per run slug, such as per-class errors, in json only)."""
    records = [asdict(r) for r in rows]
    if fmt == "json":
        return json.dumps([{**r, **(extra or {}).get(r["slug"], {})} for r in records], indent=2)
    records = [{**r, "params": describe(r["params"])} for r in records]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(records)
        return buffer.getvalue()
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(fmt_value(r[c]) for c in COLUMNS) + " |" for r in records]
    return "\n".join(lines) + "\n"
