"""The results table: one row per training run, best TTA error first; rich, csv, json or markdown."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .store import Run

COLUMNS = ("slug", "arch", "item_tfms", "batch_tfms", "epochs", "valid_error", "tta_error", "min_per_epoch",
           "test_accuracy", "status")


@dataclass(frozen=True)
class ResultRow:
    slug: str
    arch: str
    item_tfms: str
    batch_tfms: str
    epochs: int
    valid_error: float | None
    tta_error: float | None
    min_per_epoch: float | None
    test_accuracy: float | None
    status: str


def result_rows(runs: list[Run], solution: Path | None = None) -> list[ResultRow]:
    """Rows sorted by TTA error (unfinished runs last). `solution` scores each run's own test predictions."""
    rows = []
    for run in runs:
        m = run.metrics
        rows.append(ResultRow(
            slug=run.slug, arch=run.spec.get("arch", ""), item_tfms=run.spec.get("item", ""),
            batch_tfms=run.spec.get("batch", ""), epochs=run.spec.get("epochs", 0),
            valid_error=m.get("valid_error"), tta_error=m.get("tta_error"),
            min_per_epoch=m.get("minutes_per_epoch"),
            test_accuracy=_test_accuracy(run, solution), status=run.status.value))
    return sorted(rows, key=lambda r: (r.tta_error is None, r.tta_error or 0.0, r.slug))


def _test_accuracy(run: Run, solution: Path | None) -> float | None:
    if solution is None or not solution.is_file() or not run.output_dir:
        return None
    from .ensemble import load_tta
    from .scoring import probs_accuracy

    data = load_tta(Path(run.output_dir) / "tta.pkl")
    return probs_accuracy(data["files"], data["vocab"], data["probs"], solution)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def rich_table(rows: list[ResultRow], title: str = "Results"):
    from rich.table import Table

    table = Table(title=title, header_style="bold")
    shown = [c for c in COLUMNS if c != "test_accuracy" or any(r.test_accuracy is not None for r in rows)]
    for column in shown:
        table.add_column(column, justify="right" if column in ("epochs", "valid_error", "tta_error",
                                                               "min_per_epoch", "test_accuracy") else "left")
    for row in rows:
        table.add_row(*(_fmt(getattr(row, c)) for c in shown))
    return table


def export(rows: list[ResultRow], fmt: str) -> str:
    records = [asdict(r) for r in rows]
    if fmt == "json":
        return json.dumps(records, indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(records)
        return buffer.getvalue()
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in COLUMNS) + " |" for r in records]
    return "\n".join(lines) + "\n"
