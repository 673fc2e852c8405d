"""Minutes per epoch of any timm arch at any size and batch size, before it has run: timm's benchmark cost per
image (`benchmarks`), calibrated on the seed's 13 measured runs (`priors`).

The form, per image of an epoch: load_ms + k x cost_ms + step_ms / bs.
- load_ms: what every image costs whatever the model: decoding, augmenting, fastai's loop, validation's share.
- k: the benchmark's inference milliseconds (RTX 3090, fp16) -> training milliseconds on the seed's GPU, fp16:
  a forward and backward pass on a slower card.
- step_ms / bs: what every batch costs (launches, the optimizer, the loss scaler): the seed's swinv2 runs at
  bs 16 took 35% longer per epoch than at bs 64.
The constants are a least-squares fit on relative errors over the seed's runs, in plain Python (a 3 x 3 linear
system); bench/cost_model.py measures it by leaving each run out in turn and predicting it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from toolkit.runs.costs import benchmarks, priors
from toolkit.runs.costs.priors import Prior
from toolkit.specs.transforms import image_size


@dataclass(frozen=True)
class Fit:
    load_ms: float
    k: float
    step_ms: float

    def ms_per_image(self, cost_ms: float, bs: int) -> float:
        return self.load_ms + self.k * cost_ms + self.step_ms / bs

    def minutes_per_epoch(self, cost_ms: float, bs: int) -> float:
        """For the seed's SEED_IMAGES images."""
        return self.ms_per_image(cost_ms, bs) * priors.SEED_IMAGES / 60_000


@dataclass(frozen=True)
class Found:
    minutes_per_epoch: float  # for priors.SEED_IMAGES images
    how: str  # "seed", "seed, scaled", "timm" or "params"
    cost: benchmarks.Cost | None = None  # the benchmark's figure behind it (None: the seed's own row)


def calibrate(rows: list[Prior], bench: benchmarks.Benchmarks | None = None) -> Fit:
    """The constants that fit `rows` best in relative terms: each row's equation divided by its minutes."""
    bench = bench or benchmarks.shipped()
    system = []
    for row in rows:
        cost = bench.cost(row.arch, row.size)
        ms = row.minutes_per_epoch * 60_000 / priors.SEED_IMAGES
        system.append(([1 / ms, cost.ms / ms, 1 / (row.bs * ms)], 1.0))
    return Fit(*least_squares(system))


def least_squares(system: list[tuple[list[float], float]]) -> list[float]:
    """x minimising sum((a . x - b)^2) over (a, b): the normal equations, solved by elimination."""
    n = len(system[0][0])
    matrix = [[sum(a[i] * a[j] for a, _ in system) for j in range(n)] + [sum(a[i] * b for a, b in system)]
              for i in range(n)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(matrix[r][col]))
        matrix[col], matrix[pivot] = matrix[pivot], matrix[col]
        for r in range(n):
            if r != col:
                factor = matrix[r][col] / matrix[col][col]
                matrix[r] = [v - factor * p for v, p in zip(matrix[r], matrix[col])]
    return [matrix[i][n] / matrix[i][i] for i in range(n)]


@functools.cache
def fitted() -> Fit:
    """The constants from all of the seed's runs (computed once, on the first estimate that needs them)."""
    return calibrate(priors.PRIORS)


def from_benchmark(arch: str, size: tuple[int, int] | None, bs: int, fit: Fit | None = None,
                   bench: benchmarks.Benchmarks | None = None) -> Found | None:
    """The calibrated benchmark figure ("timm", or "params" for an arch in no table); None: no figure at all."""
    cost = (bench or benchmarks.shipped()).cost(arch, size)
    if cost is None:
        return None
    return Found((fit or fitted()).minutes_per_epoch(cost.ms, bs), cost.how, cost)


def seed_scaled(arch: str, size: tuple[int, int] | None, bs: int, rows: list[Prior], fit: Fit | None = None,
                bench: benchmarks.Benchmarks | None = None) -> Found | None:
    """The seed's rows of this arch, each scaled to this size and batch size by the model's ratio, averaged:
    the arch's own measurements where they exist, the model only for the difference."""
    target = from_benchmark(arch, size, bs, fit, bench)
    same = [row for row in rows if row.arch == arch]
    if target is None or target.how != "timm" or not same:
        return None
    scaled = [row.minutes_per_epoch * target.minutes_per_epoch /
              from_benchmark(row.arch, row.size, row.bs, fit, bench).minutes_per_epoch for row in same]
    return Found(sum(scaled) / len(scaled), "seed, scaled", target.cost)


def lookup(arch: str, item: str, batch: str, bs: int) -> Found | None:
    """Minutes per epoch on Paddy's images: the seed's row; else its rows of the arch, scaled by the model; else
    the benchmark's cost, calibrated; else None (an arch in no table and of no known size)."""
    exact = priors.lookup(arch, item, batch, bs)
    if exact is not None:
        return Found(exact.minutes_per_epoch, exact.how)
    size = image_size(item, batch)
    return seed_scaled(arch, size, bs, priors.PRIORS) or from_benchmark(arch, size, bs)
