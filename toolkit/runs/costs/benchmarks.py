"""What a timm arch costs per image on a GPU, from timm's published benchmark tables (toolkit/data, trimmed copies
of pytorch-image-models' results/benchmark-infer-*.csv; their headers say which file, commit and GPU).

The RTX 3090 table is the scale: of the tables timm publishes, its relative costs fit the seed's measured runs
best (bench/cost_model.py), and it is the nearest in age to Kaggle's T4. Models it lacks (about 150 newer ones)
come from the RTX Pro 6000 table, times the median ratio of the two tables' costs over the models both hold.
An arch in neither is priced from its parameter count, by a fit of cost against parameters across the table.
Loaded on first use only: planning without an estimate never reads them.
"""

from __future__ import annotations

import csv
import functools
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "data"
TABLES = ("timm_benchmark_rtx3090.csv", "timm_benchmark_pro6000.csv")  # the scale first, then the fill
ALIASES = DATA / "timm_aliases.txt"
REFERENCE_PX = 224 * 224  # the parameter fit's size, and a run's when its transforms do not say


@dataclass(frozen=True)
class Row:
    img_size: int  # square, as timm benchmarks
    ms: float | None  # milliseconds per image, on the scale table's GPU (None: the benchmark could not run it)
    params_m: float
    gmacs: float


@dataclass(frozen=True)
class Cost:
    ms: float  # per image at the run's size, on the scale table's GPU
    how: str  # "timm": a benchmark row, scaled by pixels; "params": from the parameter count
    gmacs: float | None = None  # the row's multiply-adds at the run's size (None: from params)
    params_m: float | None = None


class Benchmarks:
    """Benchmark rows by model name (timm's, without a pretrained tag), the scale table's first."""

    def __init__(self, tables: list[dict[str, list[Row]]]):
        self.rows: dict[str, list[Row]] = {}
        for table in tables:
            scale = _scale(tables[0], table) if self.rows else 1.0
            for model, rows in table.items():
                self.rows.setdefault(model, [Row(r.img_size, r.ms and r.ms * scale, r.params_m, r.gmacs)
                                             for r in rows])

    def cost(self, arch: str, size: tuple[int, int] | None) -> Cost | None:
        """Per-image cost of `arch` (any name kpush accepts) at `size` (None: not said, 224 px): from its rows;
        else from its parameter count, where a table lists one; else None."""
        listed = self.rows.get(model_name(arch), [])
        rows = [r for r in listed if r.ms]
        if not rows:
            params = max((r.params_m for r in listed), default=0.0)
            return self.from_params(params, size) if params > 0 else None
        pixels = size[0] * size[1] if size else REFERENCE_PX
        row = min(rows, key=lambda r: abs(r.img_size ** 2 - pixels))  # the nearest measured size
        scale = pixels / row.img_size ** 2  # compute grows with pixels (or tokens) from there
        return Cost(row.ms * scale, "timm", row.gmacs * scale, row.params_m)

    @functools.cached_property
    def params_fit(self) -> tuple[float, float]:
        """log(ms at 224 px) = a + b log(params): a least-squares line over every model of the tables."""
        points = [(math.log(r.params_m), math.log(r.ms * REFERENCE_PX / r.img_size ** 2))
                  for rows in self.rows.values() for r in rows[:1] if r.params_m > 0 and r.ms]
        mean_x = statistics.fmean(x for x, _ in points)
        mean_y = statistics.fmean(y for _, y in points)
        slope = (sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points))
        return mean_y - slope * mean_x, slope

    def from_params(self, params_m: float, size: tuple[int, int] | None) -> Cost:
        """The cost the fit gives a model of `params_m` million parameters (at 224 px when no size is known)."""
        intercept, slope = self.params_fit
        pixels = size[0] * size[1] if size else REFERENCE_PX
        return Cost(math.exp(intercept + slope * math.log(params_m)) * pixels / REFERENCE_PX, "params",
                    params_m=params_m)


def _scale(base: dict[str, list[Row]], other: dict[str, list[Row]]) -> float:
    """How many of `base`'s milliseconds one of `other`'s is: the median over the (model, size) both hold."""
    ratios = [b.ms / o.ms for model, rows in other.items() for o in rows
              for b in base.get(model, ()) if b.img_size == o.img_size and b.ms and o.ms]
    return statistics.median(ratios)


def read_table(path: Path) -> dict[str, list[Row]]:
    """A trimmed table: comment lines, then model,img_size,samples_per_sec,param_count_m,gmacs."""
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    table: dict[str, list[Row]] = {}
    for row in csv.DictReader(lines):
        speed = float(row["samples_per_sec"] or 0)  # none: the benchmark could not run it (its params still count)
        table.setdefault(row["model"], []).append(Row(int(row["img_size"]), 1000 / speed if speed else None,
                                                      float(row["param_count_m"] or 0), float(row["gmacs"] or 0)))
    return table


@functools.cache
def shipped() -> Benchmarks:
    return Benchmarks([read_table(DATA / name) for name in TABLES])


@functools.cache
def aliases() -> dict[str, str]:
    """timm's deprecated names -> the name.tag each stands for (convnext_small_in22k -> convnext_small.fb_in22k)."""
    pairs = (line.split() for line in ALIASES.read_text().splitlines() if line and not line.startswith("#"))
    return {old: new for old, new in pairs}


def model_name(arch: str) -> str:
    """The name timm's tables use: a deprecated alias's current name, without a pretrained tag."""
    return aliases().get(arch, arch).split(".", 1)[0]
