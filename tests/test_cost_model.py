"""Pricing runs before they have run: timm's benchmark tables (aliases resolved), calibrated on the seed's runs;
an arch in no table priced from its parameter count, or marked a guess; the Part 3 large sweep priced by the
benchmark, each run at its compute ratio over its small sibling. Fast: no training, no network."""

from __future__ import annotations

from pathlib import Path

import pytest
from console import console

from toolkit.core.config import load_config
from toolkit.project import Project
from toolkit.runs.costs import benchmarks, cost_model, priors
from toolkit.runs.costs.estimate import estimate
from toolkit.specs.spec import build_spec, known_archs
from toolkit.specs.sweep_file import load_sweep
from toolkit.specs.transforms import image_size

ROOT = Path(__file__).resolve().parent.parent
LARGE = ROOT / "sweeps" / "paddy-large.toml"
SIBLINGS = {"convnext_large_in22k": "convnext_small_in22k", "vit_large_patch16_224": "vit_small_patch16_224",
            "swinv2_large_window12_192_22k": "swinv2_base_window12_192_22k",
            "swin_large_patch4_window7_224": "swin_small_patch4_window7_224"}


def large_specs():
    return [build_spec(row.values, row.where) for row in load_sweep(LARGE).rows]


def kaggle_project(tmp_path) -> Project:
    return Project(load_config(tmp_path, backend="kaggle", username="me"), offline=True)


def test_least_squares_recovers_the_constants_it_was_made_with():
    truth = [0.5, 2.0, 40.0]
    rows = [([1.0, cost, 1 / bs], truth[0] + truth[1] * cost + truth[2] / bs)
            for cost, bs in [(0.2, 64), (0.5, 64), (0.9, 16), (1.3, 32), (0.7, 8)]]
    assert cost_model.least_squares(rows) == pytest.approx(truth)


def test_the_calibration_prices_each_seed_run_within_15_percent():
    fit = cost_model.fitted()
    assert fit.load_ms > 0 and fit.k > 0 and fit.step_ms > 0  # each term costs time, as it should
    for row in priors.PRIORS:
        found = cost_model.from_benchmark(row.arch, row.size, row.bs)
        assert found.how == "timm"
        assert found.minutes_per_epoch == pytest.approx(row.minutes_per_epoch, rel=0.15), row


@pytest.mark.parametrize("arch, name", [
    ("convnext_small_in22k", "convnext_small"),  # deprecated: convnext_small.fb_in22k
    ("swinv2_base_window12_192_22k", "swinv2_base_window12_192"),  # deprecated: ....ms_in22k
    ("swinv2_large_window12_192_22k", "swinv2_large_window12_192"),
    ("vit_large_patch16_224", "vit_large_patch16_224"),  # a current name
    ("convnext_large.fb_in22k", "convnext_large"),  # a tag
])
def test_aliases_and_tags_resolve_to_the_benchmarks_names(arch, name):
    assert benchmarks.model_name(arch) == name
    assert benchmarks.shipped().cost(arch, (224, 224)).how == "timm"


def test_the_alias_file_matches_the_installed_timm():
    registry = pytest.importorskip("timm.models._registry")
    assert benchmarks.aliases() == dict(registry._deprecated_models), "stale: run `make archs`"


def test_every_arch_kpush_accepts_is_in_a_benchmark_table():
    missing = [arch for arch in known_archs() if benchmarks.shipped().cost(arch, (224, 224)).how != "timm"]
    assert not missing, f"refresh toolkit/data's tables (bench/timm_tables.py): {missing[:5]}"


def test_the_cost_scales_with_pixels_from_the_nearest_measured_size():
    bench = benchmarks.shipped()
    at_224, at_288 = bench.cost("convnext_small", (224, 224)), bench.cost("convnext_small", (288, 288))
    assert at_288.ms > at_224.ms  # the 288 row itself, not 224's scaled: timm measured both
    assert bench.cost("convnext_small", (448, 448)).ms == pytest.approx(
        bench.cost("convnext_small", (384, 384)).ms * 448 ** 2 / 384 ** 2)


def test_the_large_sweep_is_priced_from_timm_with_no_guess(tmp_path):
    estimates = estimate(kaggle_project(tmp_path), large_specs())
    assert [e.source for e in estimates] == ["timm"] * 8
    assert all(40 < e.minutes < 90 for e in estimates)  # an hour or so each, not the guess's 31 minutes


def test_each_large_run_costs_its_compute_ratio_over_its_small_sibling(tmp_path):
    """The part of a run's cost that grows with the model grows by the benchmark's ratio; what every image and
    batch cost whatever the model (the calibration's load and step terms) stays. Small siblings are priced at
    the large run's transforms and bs from their seed rows (`seed~`), so give or take that anchoring."""
    fit, bench = cost_model.fitted(), benchmarks.shipped()
    for spec in large_specs():
        large = cost_model.lookup(spec.arch, spec.item, spec.batch, spec.bs)
        small = cost_model.lookup(SIBLINGS[spec.arch], spec.item, spec.batch, spec.bs)
        size = image_size(spec.item, spec.batch)
        ratio = bench.cost(spec.arch, size).ms / bench.cost(SIBLINGS[spec.arch], size).ms
        fixed = fit.minutes_per_epoch(0.0, spec.bs)  # load and step: no model cost
        assert ratio > 1.5 and small.how == "seed, scaled"
        assert large.minutes_per_epoch - fixed == pytest.approx(ratio * (small.minutes_per_epoch - fixed), rel=0.15)


def without(model: str, keep_params: bool) -> benchmarks.Benchmarks:
    """The shipped tables with `model`'s measurements gone (its parameter count kept, or gone too)."""
    rows = dict(benchmarks.shipped().rows)
    rows[model] = [benchmarks.Row(r.img_size, None, r.params_m, r.gmacs) for r in rows[model]] if keep_params else []
    return benchmarks.Benchmarks([rows])


def test_an_arch_in_no_table_is_priced_from_its_parameter_count(monkeypatch):
    measured = cost_model.from_benchmark("vit_large_patch16_224", (224, 224), 32)
    fake = without("vit_large_patch16_224", keep_params=True)
    monkeypatch.setattr(benchmarks, "shipped", lambda: fake)
    found = cost_model.lookup("vit_large_patch16_224", "Resize(480)", "aug_transforms(size=224, min_scale=0.75)", 32)
    assert found.how == "params" and found.cost.params_m == pytest.approx(304.33)
    # the fit of cost against parameters across the tables lands within 2x of what timm measured for it
    assert 0.5 < found.minutes_per_epoch / measured.minutes_per_epoch < 2


def sweep_of(tmp_path, arch: str) -> Path:
    path = tmp_path / "one.toml"
    path.write_text(f'[[run]]\narch = "{arch}"\ncompetition = "paddy-disease-classification"\n')
    return path


def dry_run(tmp_path, monkeypatch, sweep: Path) -> str:
    """`kpush sweep --dry-run --backend kaggle` in this process, so a test's tables are the ones it plans with."""
    from typer.testing import CliRunner

    from toolkit import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOOLKIT_PROJECT", str(tmp_path))
    monkeypatch.setenv("TOOLKIT_USERNAME", "me")
    monkeypatch.setenv("COLUMNS", "250")
    result = CliRunner().invoke(cli.push_app, ["sweep", str(sweep), "--dry-run", "--backend", "kaggle"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_plan_says_which_arch_was_priced_from_its_parameter_count(tmp_path, monkeypatch):
    fake = without("resnet34", keep_params=True)
    monkeypatch.setattr(benchmarks, "shipped", lambda: fake)
    out = dry_run(tmp_path, monkeypatch, sweep_of(tmp_path, "resnet34"))
    assert "│ params │" in out
    assert "params: resnet34 in no timm benchmark table: priced from its parameter count" in out


def test_an_arch_of_no_known_size_is_a_guess_and_the_plan_says_so(tmp_path, monkeypatch):
    fake = without("resnet34", keep_params=False)
    monkeypatch.setattr(benchmarks, "shipped", lambda: fake)
    out = dry_run(tmp_path, monkeypatch, sweep_of(tmp_path, "resnet34"))
    assert "│ guess │" in out and "guess: resnet34 in no timm benchmark table: 2 min/epoch" in out


def test_kpush_plans_the_large_sweep_with_no_guess(tmp_path):
    """Through the real console script, as a user runs it: a dry run contacts nothing and needs only a username."""
    result = console(tmp_path, "kpush", "sweep", str(LARGE), "--dry-run", "--backend", "kaggle",
                     TOOLKIT_USERNAME="you")
    assert result.returncode == 0, result.stderr
    assert "guess" not in result.stdout and result.stdout.count("│ timm │") == 8
    assert "paddy-large.toml: 8 runs in 8 sessions" in result.stdout
    assert "timm: timm's benchmark cost per image" in result.stdout
