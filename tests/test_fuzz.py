"""Property tests: whatever a user (or a sweep file) supplies ends in a valid result or a ToolkitError."""

from __future__ import annotations

import ast
import functools
import os
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.core.errors import ToolkitError
from toolkit.specs.spec import FIELDS, SLUG_MAX, SLUG_MIN, RunSpec, build_spec, check_slug, make_slug, slugify
from toolkit.specs.transforms import KNOWN_CONSTANTS, KNOWN_TRANSFORMS, NEEDS_SIZE, parse_transforms

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Values of the kinds TOML (sweep files, toolkit.toml) and the CLI can produce.
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=40), st.sampled_from(["resnet18", "digits-demo", "Resize(224)", "fp16", ""]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5),
                                                                                        inner, max_size=3),
                      max_leaves=6)
keys = st.one_of(st.sampled_from(sorted(FIELDS)), st.text(max_size=12))


def _valid_spec(spec: RunSpec) -> None:
    again = build_spec(spec.to_dict())  # a built spec rebuilds to itself
    assert again == spec and again.content_hash == spec.content_hash
    assert check_slug(spec.slug) == spec.slug


@FAST
@given(st.dictionaries(keys, values, max_size=8))
def test_build_spec_on_arbitrary_dicts(raw):
    try:
        spec = build_spec(raw)
    except ToolkitError:
        return
    _valid_spec(spec)


@FAST
@given(st.fixed_dictionaries({"arch": st.sampled_from(["resnet18", "convnext_small_in22k", "resnet18.a1_in1k"]),
                              "competition": st.just("digits-demo")},
                             optional={k: values for k in sorted(FIELDS) if k not in ("arch", "competition")}))
def test_build_spec_on_nearly_valid_dicts(raw):
    try:
        spec = build_spec(raw, where="sweep.toml: run 1")
    except ToolkitError as exc:
        assert str(exc).startswith("sweep.toml: run 1: ")
        return
    _valid_spec(spec)


@FAST
@given(st.text(max_size=120), st.text(alphabet="0123456789abcdef", min_size=8, max_size=8))
def test_make_slug_is_always_a_valid_kernel_slug(label, content_hash):
    slug = make_slug(label, content_hash)
    assert SLUG_MIN <= len(slug) <= SLUG_MAX and slugify(slug) == slug and slug.endswith(content_hash)
    assert check_slug(slug) == slug


@FAST
@given(st.text(max_size=80))
def test_check_slug_accepts_or_refuses(text):
    try:
        assert check_slug(text) == text and slugify(text) == text
    except ToolkitError:
        pass


@FAST
@given(st.text(max_size=200))
def test_parse_transforms_on_arbitrary_text(text):
    try:
        canonical = parse_transforms(text)
    except ToolkitError:
        return
    assert parse_transforms(canonical) == canonical  # canonical text is a fixed point


printable = st.text(alphabet=string.printable, max_size=60)


@FAST
@given(st.one_of(printable, st.builds(lambda a, b: f"{a}({b})", st.sampled_from(sorted(KNOWN_TRANSFORMS)),
                                      printable)))
def test_parse_transforms_on_call_like_text(text):
    try:
        canonical = parse_transforms(text)
    except ToolkitError:
        return
    assert parse_transforms(canonical) == canonical


# Expressions built as ASTs: mostly the right shape, with hostile parts mixed in.
literal = st.one_of(
    st.integers(-1000, 1000).map(lambda n: ast.Constant(n) if n >= 0 else
                                 ast.UnaryOp(ast.USub(), ast.Constant(-n))),
    st.floats(-10, 10, allow_nan=False).map(lambda f: ast.Constant(abs(f))),
    st.text(max_size=10).map(ast.Constant), st.booleans().map(ast.Constant), st.just(ast.Constant(None)),
    st.sampled_from([(k, a) for k, attrs in KNOWN_CONSTANTS.items() for a in attrs] + [("os", "system")]).map(
        lambda ka: ast.Attribute(ast.Name(ka[0], ast.Load()), ka[1], ast.Load())),
    st.just(ast.Call(ast.Name("open", ast.Load()), [ast.Constant("x")], [])),
    st.just(ast.Name("x", ast.Load())),
    st.just(ast.Lambda(ast.arguments([], [], None, [], [], None, []), ast.Constant(1))),
)
arguments = st.recursive(literal, lambda inner: st.lists(inner, max_size=3).map(lambda e: ast.Tuple(e, ast.Load())),
                         max_leaves=4)


@st.composite
def calls(draw):
    name = draw(st.sampled_from(sorted(KNOWN_TRANSFORMS) + ["eval", "__import__", "Evil"]))
    params = KNOWN_TRANSFORMS.get(name, ("x",))
    args = draw(st.lists(arguments, max_size=3))
    keywords = [ast.keyword(k, draw(arguments)) for k in draw(st.lists(st.sampled_from(params + ("bad",)),
                                                                        max_size=3))]
    func = ast.Name(name, ast.Load())
    if draw(st.integers(0, 9)) == 0:
        func = ast.Attribute(ast.Name("fastai", ast.Load()), name, ast.Load())
    return ast.Call(func, args, keywords)


@FAST
@given(st.one_of(calls(), st.lists(calls(), max_size=3).map(lambda c: ast.List(c, ast.Load()))))
def test_parse_transforms_on_generated_expressions(node):
    text = ast.unparse(ast.fix_missing_locations(ast.Expression(node)))
    try:
        canonical = parse_transforms(text)
    except ToolkitError:
        return
    assert parse_transforms(canonical) == canonical
    tree = ast.parse(canonical or "None", mode="eval")
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert names <= set(KNOWN_TRANSFORMS) | set(KNOWN_CONSTANTS)  # nothing else is ever referenced


# -- accepted means fastai builds it and it runs: nothing a user writes fails later in a kernel ------

plausible = st.recursive(
    st.one_of(st.integers(-2, 40), st.floats(-1.5, 2.5, allow_nan=False), st.booleans(), st.none(),
              st.sampled_from(["crop", "pad", "squish", "zeros", "border", "reflection", "bilinear", "nearest",
                               "bicubic", "abc", ""]),
              st.sampled_from([(k, a) for k, attrs in KNOWN_CONSTANTS.items() for a in attrs]).map(
                  lambda ka: f"{ka[0]}.{ka[1]}")),
    lambda inner: st.lists(inner, min_size=1, max_size=3), max_leaves=3)
# Values of the right kind per parameter (edges included), so that most generated calls pass the checker.
_unit = st.floats(0, 1)
_pair = lambda item: st.tuples(item, item).map(list)  # noqa: E731
LIKELY = {
    "size": st.one_of(st.integers(1, 48), _pair(st.integers(1, 48))), "resamples": _pair(st.integers(0, 5)),
    "method": st.sampled_from(["crop", "pad", "squish", "ResizeMethod.Squish", "ResizeMethod.Pad"]),
    "pad_mode": st.sampled_from(["zeros", "border", "reflection", "PadMode.Zeros", "PadMode.Reflection"]),
    "mode": st.sampled_from(["bilinear", "nearest", "bicubic"]), "ratio": _pair(st.floats(0.1, 3)),
    "min_scale": st.floats(0.01, 1), "max_scale": st.floats(0.01, 1), "max_lighting": st.floats(0, 0.99),
    "p": _unit, "p_affine": _unit, "p_lighting": _unit, "sl": _unit, "sh": _unit, "mult": st.floats(0, 3),
    "val_xtra": st.floats(0, 1), "max_warp": st.floats(0, 1), "magnitude": st.floats(0, 1),
    "max_hue": st.floats(0, 0.99), "min_zoom": st.floats(0.3, 1.5), "max_zoom": st.floats(0.3, 2),
    "min_aspect": st.floats(0.1, 3), "max_rotate": st.floats(-45, 45), "max_deg": st.floats(-45, 45),
    "max_count": st.integers(1, 4), "draw": st.none(), "draw_x": st.none(), "draw_y": st.none(),
    "xtra_tfms": st.none(),
}


def _literal(value) -> str:
    if isinstance(value, list):
        return "(" + ", ".join(_literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, str) and value.split(".")[0] in KNOWN_CONSTANTS:
        return value
    return repr(value)


@st.composite
def plausible_calls(draw):
    name = draw(st.sampled_from(sorted(KNOWN_TRANSFORMS)))
    params = draw(st.lists(st.sampled_from(KNOWN_TRANSFORMS[name]), unique=True, max_size=3))
    if name in NEEDS_SIZE and "size" not in params and draw(st.integers(0, 4)):
        params.insert(0, "size")
    values = [draw(LIKELY.get(p, st.booleans()) if draw(st.integers(0, 3)) else plausible) for p in params]
    return f"{name}(" + ", ".join(f"{p}={_literal(v)}" for p, v in zip(params, values)) + ")"


@functools.lru_cache(maxsize=1)
def fastai_names() -> dict:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import fastai.vision.all as vision
    return dict(vars(vision))


# FUZZ_EXAMPLES=10000 searches longer (about 1.5 minutes).
@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 300)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(plausible_calls())
def test_accepted_transforms_build_and_run_in_fastai(text):
    import torch

    fastai_ns = fastai_names()
    try:
        canonical = parse_transforms(text)
    except ToolkitError:
        return
    value = eval(canonical, dict(fastai_ns))  # noqa: S307 - canonical text has passed the checker
    tfms = value if isinstance(value, list) else [value]
    image = fastai_ns["PILImage"].create(torch.randint(0, 255, (24, 32, 3), dtype=torch.uint8).numpy())
    batch = fastai_ns["TensorImage"](torch.rand(2, 3, 24, 32))
    on_items = text.startswith(("Resize", "RandomResizedCrop", "CropPad", "RandomCrop"))
    target = image if on_items else batch[0] if text.startswith("RandomErasing") else batch
    for split in (0, 1):  # training and validation
        for tfm in tfms:
            tfm(target, split_idx=split)

