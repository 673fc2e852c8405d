"""RunSpec validation, content hash, slugs and titles (toolkit/specs/spec.py)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from toolkit.core.errors import SpecError
from toolkit.specs.spec import (_ARCHS_FILE, SLUG_MAX, SLUG_MIN, RunSpec, build_spec, check_slug, known_archs,
                                make_slug, slugify, title_for)

BASE = {"arch": "resnet18", "competition": "digits-demo"}


def spec(**changes) -> RunSpec:
    return build_spec({**BASE, **changes})


def error_of(values: dict) -> SpecError:
    with pytest.raises(SpecError) as info:
        build_spec(values)
    return info.value


# -- validation ------------------------------------------------------------------------------

def test_defaults_are_the_seed_values():
    s = spec()
    assert (s.epochs, s.lr, s.bs, s.accum, s.seed, s.precision, s.pretrained) == (12, 0.01, 64, 1, 42, "fp16", True)
    assert s.item == "Resize(480, method='squish')"
    assert s.batch == "aug_transforms(size=224, min_scale=0.75)"


def test_unknown_key_suggests_the_close_one():
    err = error_of({**BASE, "epoch": 3})
    assert "unknown run parameter 'epoch'" in err.message
    assert "epochs" in err.hint


def test_unknown_key_without_close_match_lists_known_keys():
    err = error_of({**BASE, "zzzzzz": 3})
    assert "known keys" in err.hint and "epochs" in err.hint


@pytest.mark.parametrize("missing", ["arch", "competition"])
def test_required_keys(missing):
    values = dict(BASE)
    del values[missing]
    assert f"'{missing}' is required" in error_of(values).message


@pytest.mark.parametrize("key, value", [
    ("epochs", "3"), ("epochs", 1.5), ("epochs", True), ("bs", "64"), ("accum", None),
    ("arch", 18), ("competition", ["x"]), ("pretrained", "yes"), ("pretrained", 1),
    ("seed", "42"), ("seed", 4.2), ("lr", "0.01"), ("lr", True), ("valid_pct", "0.2"), ("name", 7),
    ("item", 480), ("batch", ["aug_transforms()"]),
])
def test_wrong_types_are_refused(key, value):
    err = error_of({**BASE, key: value})
    assert key in err.message


@pytest.mark.parametrize("key, value", [
    ("epochs", 0), ("epochs", -1), ("epochs", 1001), ("bs", 0), ("bs", 5000), ("accum", 0),
    ("lr", 0), ("lr", -0.01), ("lr", math.nan), ("lr", math.inf), ("lr", 10),
    ("valid_pct", 0.0), ("valid_pct", 1.0), ("seed", -1), ("seed", 2**32),
])
def test_out_of_range_values_are_refused(key, value):
    err = error_of({**BASE, key: value})
    assert key in err.message


def test_boundary_values_are_accepted():
    s = spec(epochs=1, bs=1, accum=64, seed=0, lr=1e-6, valid_pct=0.5)
    assert (s.epochs, s.bs, s.accum, s.seed) == (1, 1, 64, 0)
    assert spec(seed=2**32 - 1).seed == 2**32 - 1
    assert spec(seed=None).seed is None


def test_lr_integer_becomes_float():
    s = spec(lr=1)
    assert s.lr == 1.0 and isinstance(s.lr, float)


@pytest.mark.parametrize("precision", ["fp16", "bf16", "fp32"])
def test_precisions_accepted(precision):
    assert spec(precision=precision).precision == precision


@pytest.mark.parametrize("precision", ["fp8", "FP16", "", 16])
def test_bad_precision(precision):
    assert "precision" in error_of({**BASE, "precision": precision}).message


def test_unknown_arch_suggests_close_timm_names():
    err = error_of({**BASE, "arch": "convnext_smal"})
    assert "unknown architecture 'convnext_smal'" in err.message
    assert "convnext_small" in err.hint


def test_hopeless_arch_points_at_timm():
    err = error_of({**BASE, "arch": "qqqqqqqqqqqq"})
    assert "timm.list_models" in err.hint


@pytest.mark.parametrize("arch", ["convnext_small_in22k", "convnext_small.fb_in22k", "resnet26d",
                                  "tf_efficientnet_lite0", "swinv2_base_window12_192_22k"])
def test_seed_archs_accepted(arch):
    assert spec(arch=arch).arch == arch


@pytest.mark.parametrize("name", ["paddy_disease", "-paddy", "paddy-", "paddy disease", "paddy.v2", "x" * 101, ""])
def test_bad_competition_names(name):
    assert "competition" in error_of({**BASE, "competition": name}).message


@pytest.mark.parametrize("name", ["GiveMeSomeCredit", "LANL-Earthquake-Prediction", "R", "hhp",
                                  "15-071x-the-analytics-edge-spring-20152"])
def test_competition_names_as_kaggle_urls_hold_them(name):
    assert spec(competition=name).competition == name


@pytest.mark.parametrize("name, says", [("Ünïcödé run", "non-ASCII"), ("2024 convnext", "starts with a digit"),
                                        ("_1st", "starts with a digit")])
def test_names_kaggle_refuses_as_kernels_are_refused(name, says):
    assert says in error_of({**BASE, "name": name}).message


def test_name_without_slug_characters_is_refused():
    assert "name" in error_of({**BASE, "name": "!!!"}).message


def test_where_prefix_names_the_source():
    with pytest.raises(SpecError) as info:
        build_spec({**BASE, "epochs": 0}, where="sweeps/x.toml row 3")
    assert info.value.message.startswith("sweeps/x.toml row 3: ")


def test_spec_round_trips_through_to_dict():
    s = spec(name="my run", epochs=3)
    assert build_spec(s.to_dict()) == s


# -- content hash ----------------------------------------------------------------------------

def test_content_hash_ignores_name():
    a, b = spec(name="first"), spec(name="second")
    assert a.content_hash == b.content_hash
    assert a.slug != b.slug


def test_content_hash_changes_with_every_result_field():
    base = spec()
    changed = [spec(epochs=13), spec(lr=0.02), spec(bs=32), spec(accum=2), spec(seed=1), spec(seed=None),
               spec(precision="fp32"), spec(pretrained=False), spec(valid_pct=0.25), spec(arch="resnet34"),
               spec(competition="paddy-disease-classification"), spec(item="Resize(224)"),
               spec(batch="aug_transforms(size=128)")]
    hashes = {s.content_hash for s in changed}
    assert len(hashes) == len(changed) and base.content_hash not in hashes


def test_content_hash_sees_canonical_text_not_spelling():
    # Spacing and quote style do not change the hash; the defaults are already canonical.
    assert spec(item='Resize(480,method="squish")').content_hash == spec().content_hash
    assert spec(batch="aug_transforms( size = 224 , min_scale = 0.75 )").content_hash == spec().content_hash
    assert spec(lr=1).content_hash == spec(lr=1.0).content_hash


def test_content_hash_is_stable_across_processes():
    code = ("from toolkit.specs.spec import build_spec;"
            "print(build_spec({'arch': 'resnet18', 'competition': 'digits-demo', 'epochs': 3}).content_hash)")
    hashes = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        hashes.add(out.stdout.strip())
    assert hashes == {spec(epochs=3).content_hash}
    assert len(spec().content_hash) == 8 and int(spec().content_hash, 16) >= 0


# -- slugs and titles ------------------------------------------------------------------------

SLUG_CASES = [
    {}, {"name": "My Run!"}, {"name": "x" * 200}, {"name": "a " * 60}, {"arch": "convnext_small.fb_in22k"},
    {"arch": "swinv2_base_window12_192_22k"}, {"name": "Unicode run"}, {"name": "__--__ok"},
    {"name": "a" * 41 + "-b"},
]


@pytest.mark.parametrize("changes", SLUG_CASES)
def test_slug_rules(changes):
    s = spec(**changes)
    slug = s.slug
    assert SLUG_MIN <= len(slug) <= SLUG_MAX
    assert slug == slug.lower() and slugify(slug) == slug  # letters, digits, single inner hyphens
    assert slug.endswith("-" + s.content_hash)
    assert check_slug(slug) == slug
    assert slugify(title_for(slug)) == slug


def test_long_names_are_truncated_but_keep_the_hash():
    s = spec(name="a-very-long-experiment-name-that-goes-on-and-on-and-on-forever")
    assert len(s.slug) <= SLUG_MAX and not s.slug.startswith("-") and "--" not in s.slug
    assert s.slug.startswith("a-very-long-experiment")
    assert len(spec(name="x" * 80).slug) == SLUG_MAX
    assert s.slug.endswith(s.content_hash)


def test_slug_uses_arch_when_unnamed():
    assert spec(arch="convnext_small_in22k").slug.startswith("convnext-small-in22k-")


def test_different_specs_never_share_a_slug():
    specs = [spec(name="same", epochs=e, lr=lr) for e in range(1, 41) for lr in (0.01, 0.02, 0.005)]
    assert len({s.slug for s in specs}) == len(specs)
    # even when long names truncate to the same head
    long = [spec(name="z" * 80 + str(i), epochs=i) for i in range(1, 21)]
    assert len({s.slug for s in long}) == len(long)


def test_make_slug_with_nothing_sluggable_falls_back():
    assert make_slug("!!!", "deadbeef") == "run-deadbeef"


@pytest.mark.parametrize("slug", ["abc", "x" * 51, "Upper-case", "a--b-c", "-abcde", "abcde-", "a_b_c_d", "a b c d"])
def test_check_slug_refuses(slug):
    with pytest.raises(SpecError):
        check_slug(slug)


# -- the bundled architecture list -----------------------------------------------------------

def test_timm_archs_file_matches_installed_timm():
    import timm
    from timm.models import _registry

    installed = set(timm.list_models()) | set(_registry._deprecated_models.keys())
    listed = set(known_archs())
    assert listed == installed, (f"toolkit/data/timm_archs.txt is stale: {len(installed - listed)} missing, "
                                 f"{len(listed - installed)} extra; run `make archs`")
    header = _ARCHS_FILE.read_text().splitlines()[0]
    assert timm.__version__ in header, "the file's header should name the timm version it was made from"


def test_a_renamed_slug_keeps_its_hash_and_counts_up():
    from toolkit.specs.spec import is_renamed, renamed_slug

    assert renamed_slug("resnet18-7e8f2d21") == "resnet18-7e8f2d21-r2"
    assert renamed_slug("resnet18-7e8f2d21", "resnet18-7e8f2d21-r2") == "resnet18-7e8f2d21-r3"
    long = make_slug("x" * 60, "0123abcd")
    again = renamed_slug(long)
    assert len(again) <= SLUG_MAX and again.endswith("-0123abcd-r2") and check_slug(again) == again
    assert is_renamed(again, long) and is_renamed(renamed_slug(long, again), long)
    assert not is_renamed(long, long) and not is_renamed("resnet18-7e8f2d21-r2", "resnet34-7e8f2d21")
