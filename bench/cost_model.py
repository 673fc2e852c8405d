"""How well the cost model (toolkit/runs/costs/cost_model.py) prices runs it has not seen, and what it says of Part 3.

Leave-one-out on the seed's 13 measured runs: each run is predicted by constants fitted on the other 12, with the
toolkit's own fitting code, by the model alone (`timm`) and by the arch's other seed rows scaled by the model
(`seed~`, what the plan uses for an arch the seed trained at another size or batch size); beside them, the
estimate this replaced (the arch's other rows scaled by pixels) and the model on another of timm's tables. Then
the Part 3 large sweep (sweeps/paddy-large.toml) priced as `kpush sweep --dry-run` prices it, each run beside its
small sibling (the seed's arch of the same family, at the same transforms and batch size). No GPU, no network.
Writes bench/results/cost_model.json.

    .venv/bin/python bench/cost_model.py
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from toolkit.runs.costs import benchmarks, cost_model, priors
from toolkit.runs.costs.estimate import DEFAULT_MIN_PER_EPOCH, Estimate
from toolkit.specs.spec import build_spec
from toolkit.specs.sweep_file import load_sweep
from toolkit.specs.transforms import image_size

ROOT = Path(__file__).resolve().parent.parent
SIBLINGS = {"convnext_large_in22k": "convnext_small_in22k", "vit_large_patch16_224": "vit_small_patch16_224",
            "swinv2_large_window12_192_22k": "swinv2_base_window12_192_22k",
            "swin_large_patch4_window7_224": "swin_small_patch4_window7_224"}


def leave_one_out(bench: benchmarks.Benchmarks) -> list[dict]:
    """Each seed run predicted without it: by the model, and by its arch's other rows scaled by the model."""
    out = []
    for index, row in enumerate(priors.PRIORS):
        rest = priors.PRIORS[:index] + priors.PRIORS[index + 1:]
        fit = cost_model.calibrate(rest, bench)
        model = cost_model.from_benchmark(row.arch, row.size, row.bs, fit, bench).minutes_per_epoch
        scaled = cost_model.seed_scaled(row.arch, row.size, row.bs, rest, fit, bench).minutes_per_epoch
        out.append({"arch": row.arch, "item": row.item, "batch": row.batch, "bs": row.bs,
                    "measured_min_per_epoch": round(row.minutes_per_epoch, 3),
                    "predicted_min_per_epoch": round(model, 3), "relative_error": _error(model, row),
                    "seed_scaled_min_per_epoch": round(scaled, 3), "seed_scaled_relative_error": _error(scaled, row),
                    "by_pixels_relative_error": _error(_by_pixels(row, rest), row)})
    return out


def _by_pixels(row: priors.Prior, rest: list[priors.Prior]) -> float:
    """The estimate the cost model replaced: the arch's other rows, scaled by pixels."""
    same = [p for p in rest if p.arch == row.arch]
    return statistics.fmean(p.minutes_per_epoch * _pixels(row) / _pixels(p) for p in same)


def _pixels(row: priors.Prior) -> int:
    return row.size[0] * row.size[1]


def _error(predicted: float, row: priors.Prior) -> float:
    return round(abs(predicted - row.minutes_per_epoch) / row.minutes_per_epoch, 4)


def summary(rows: list[dict], key: str) -> dict:
    errors = [r[key] for r in rows]
    return {"median": round(statistics.median(errors), 4), "max": round(max(errors), 4)}


def gmacs_form(shipped: benchmarks.Benchmarks) -> dict:
    """The same form with the benchmark's multiply-adds in place of its milliseconds: how far the large runs'
    prices move when per-image cost follows arithmetic rather than measured speed (not what the toolkit uses)."""
    rows = {model: [replace(r, ms=r.gmacs) for r in table] for model, table in shipped.rows.items()}
    bench = benchmarks.Benchmarks([rows])
    fit = cost_model.calibrate(priors.PRIORS, bench)
    large = [cost_model.from_benchmark(r["arch"], tuple(r["size"]), r["bs"], fit, bench) for r in large_sweep()]
    spec = build_spec({"arch": "resnet18", "competition": "paddy-disease-classification"})  # 12 epochs, pretrained
    minutes = [Estimate(spec, found.minutes_per_epoch).minutes for found in large]
    return {"constants": {k: round(v, 4) for k, v in vars(fit).items()},
            "leave_one_out": summary(leave_one_out(bench), "relative_error"),
            "large_sweep_gpu_hours": round(sum(minutes) / 60, 2)}


def large_sweep() -> list[dict]:
    """Part 3's runs as the plan prices them (Paddy's image count), each beside its small sibling."""
    sweep = load_sweep(ROOT / "sweeps" / "paddy-large.toml")
    out = []
    for spec in (build_spec(r.values, r.where) for r in sweep.rows):
        found = cost_model.lookup(spec.arch, spec.item, spec.batch, spec.bs)
        small = cost_model.lookup(SIBLINGS[spec.arch], spec.item, spec.batch, spec.bs)
        sibling = cost_model.from_benchmark(SIBLINGS[spec.arch], image_size(spec.item, spec.batch), spec.bs)
        out.append({"slug": spec.slug, "arch": spec.arch, "size": list(image_size(spec.item, spec.batch)), "bs": spec.bs,
                    "from": found.how, "min_per_epoch": round(found.minutes_per_epoch, 3),
                    "run_minutes": round(Estimate(spec, found.minutes_per_epoch, found.how).minutes, 1),
                    "flat_guess_run_minutes": round(Estimate(spec, DEFAULT_MIN_PER_EPOCH).minutes, 1),
                    "sibling": SIBLINGS[spec.arch], "sibling_from": small.how,
                    "sibling_min_per_epoch": round(small.minutes_per_epoch, 3),
                    "ratio_to_sibling": round(found.minutes_per_epoch / small.minutes_per_epoch, 2),
                    "compute_ratio_timm": round(found.cost.ms / sibling.cost.ms, 2),
                    "gmacs_ratio": round(found.cost.gmacs / sibling.cost.gmacs, 2)})
    return out


def main() -> None:
    start = time.perf_counter()
    shipped = benchmarks.shipped()
    fit = cost_model.fitted()
    load_ms = (time.perf_counter() - start) * 1000
    runs = leave_one_out(shipped)
    only_pro = benchmarks.Benchmarks([benchmarks.read_table(benchmarks.DATA / benchmarks.TABLES[1])])
    by_gmacs = gmacs_form(shipped)
    large = large_sweep()
    result = {
        "form": "minutes per epoch = images x (load_ms + k x timm_ms_per_image + step_ms / bs) / 60000",
        "constants": {k: round(v, 4) for k, v in vars(fit).items()},
        "tables": list(benchmarks.TABLES), "load_and_fit_ms": round(load_ms, 1),
        "leave_one_out_median_error": summary(runs, "relative_error")["median"],
        "leave_one_out_max_error": summary(runs, "relative_error")["max"],
        "seed_scaled_leave_one_out": summary(runs, "seed_scaled_relative_error"),
        "by_pixels_leave_one_out": summary(runs, "by_pixels_relative_error"),
        "pro6000_table_only_leave_one_out": summary(leave_one_out(only_pro), "relative_error"),
        "gmacs_form": by_gmacs,
        "runs": runs,
        "large_sweep": large,
        "large_sweep_gpu_hours": round(sum(r["run_minutes"] for r in large) / 60, 2),
        "large_sweep_flat_guess_gpu_hours": round(sum(r["flat_guess_run_minutes"] for r in large) / 60, 2),
    }
    show(result)
    out = Path(__file__).parent / "results" / "cost_model.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


def show(result: dict) -> None:
    print(f"constants: {result['constants']} (tables loaded and fitted in {result['load_and_fit_ms']} ms)")
    print(f"{'arch':<30}{'size':>10}{'bs':>4}{'measured':>10}{'timm':>8}{'err':>7}{'seed~':>8}{'err':>7}")
    for r in result["runs"]:
        size = r["batch"].split("size=")[1].split(", min")[0]
        print(f"{r['arch']:<30}{size:>10}{r['bs']:>4}{r['measured_min_per_epoch']:>10.2f}"
              f"{r['predicted_min_per_epoch']:>8.2f}{r['relative_error']:>7.1%}{r['seed_scaled_min_per_epoch']:>8.2f}"
              f"{r['seed_scaled_relative_error']:>7.1%}")
    print(f"leave-one-out median error: timm {result['leave_one_out_median_error']:.1%} "
          f"(max {result['leave_one_out_max_error']:.1%}); seed~ {result['seed_scaled_leave_one_out']['median']:.1%}; "
          f"by pixels {result['by_pixels_leave_one_out']['median']:.1%}; "
          f"timm on the Pro 6000 table alone {result['pro6000_table_only_leave_one_out']['median']:.1%}")
    print(f"{'Part 3 run':<42}{'from':>6}{'min/ep':>8}{'run min':>9}{'sibling':>9}{'ratio':>7}{'compute':>9}"
          f"{'GMACs':>7}")
    for r in result["large_sweep"]:
        print(f"{r['slug']:<42}{r['from']:>6}{r['min_per_epoch']:>8.2f}{r['run_minutes']:>9.0f}"
              f"{r['sibling_min_per_epoch']:>9.2f}{r['ratio_to_sibling']:>7.2f}{r['compute_ratio_timm']:>9.2f}"
              f"{r['gmacs_ratio']:>7.2f}")
    print(f"Part 3: {result['large_sweep_gpu_hours']} GPU hours (the flat guess said "
          f"{result['large_sweep_flat_guess_gpu_hours']}; by GMACs instead of measured speed "
          f"{result['gmacs_form']['large_sweep_gpu_hours']}, leave-one-out "
          f"{result['gmacs_form']['leave_one_out']['median']:.1%})")


if __name__ == "__main__":
    main()
