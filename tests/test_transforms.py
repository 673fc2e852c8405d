"""Transform expressions are parsed as data and canonicalised (toolkit/transforms.py)."""

from __future__ import annotations

import inspect

import pytest

from toolkit.core.errors import SpecError
from toolkit.specs.transforms import (KNOWN_CONSTANTS, KNOWN_TRANSFORMS, MAX_LENGTH, MAX_SIZE, NEEDS_SIZE, RULES,
                                      parse_transforms)

ACCEPTED = [
    # the seed's expressions, and what the notebook gets
    ("Resize(480, method='squish')", "Resize(480, method='squish')"),
    ('Resize(480,method="squish")', "Resize(480, method='squish')"),
    ("Resize((640,480))", "Resize((640, 480))"),
    ("aug_transforms(size=(288,224), min_scale=0.75)", "aug_transforms(size=(288, 224), min_scale=0.75)"),
    ("Resize(640, method=ResizeMethod.Pad, pad_mode=PadMode.Zeros)",
     "Resize(640, method=ResizeMethod.Pad, pad_mode=PadMode.Zeros)"),
    ("[Resize(480), Flip(p=0.5)]", "[Resize(480), Flip(p=0.5)]"),
    ("(Resize(480),)", "[Resize(480)]"),
    ("[Rotate(max_deg=10), Brightness(0.2), RandomErasing(p=0.1, max_count=2)]",
     "[Rotate(max_deg=10), Brightness(0.2), RandomErasing(p=0.1, max_count=2)]"),
    ("RandomResizedCrop(224, min_scale=0.35)", "RandomResizedCrop(224, min_scale=0.35)"),
    ("aug_transforms(size=224, min_scale=0.75, do_flip=True, max_rotate=5.0)",
     "aug_transforms(size=224, min_scale=0.75, do_flip=True, max_rotate=5.0)"),
    ("  CropPad(256, pad_mode='zeros')  ", "CropPad(256, pad_mode='zeros')"),
]


@pytest.mark.parametrize("text, canonical", ACCEPTED)
def test_accepted_and_canonical(text, canonical):
    assert parse_transforms(text) == canonical
    assert parse_transforms(canonical) == canonical  # canonical text is a fixed point


@pytest.mark.parametrize("text", ["", "   ", "None", "[]", "()"])
def test_empty_means_no_transforms(text):
    assert parse_transforms(text) == ""


REFUSED = [
    # attribute access other than the fastai constants
    "os.system('ls')", "Resize(480).__class__", "Resize(480, method=ResizeMethod.Evil)",
    "Resize(480, method=ResizeMethod.Pad.__class__)", "Resize(480, method=os.sep)",
    "Resize(480, method=ResizeMethod)", "fastai.vision.all.Resize(480)",
    # imports and builtins
    "import os", "__import__('os')", "__import__('os').system('ls')", "exec('print(1)')", "eval('1')",
    "Resize(__import__('os'))", "open('/etc/passwd')",
    # names, lambdas, comprehensions and other expressions
    "Resize(size)", "Resize(lambda: 1)", "lambda: Resize(1)", "Resize([i for i in range(3)])",
    "Resize(1 + 2)", "Resize(10**100)", "Resize(-size)", "Resize(f'{x}')", "Resize(b'x')", "Resize(1j)",
    "Resize({'a': 1})", "Resize(*[480])", "Resize(**{'size': 480})", "Resize(Resize(1))",
    "aug_transforms(xtra_tfms=[Flip()])", "Resize(480) if True else None", "(x := Resize(1))",
    "Resize", "480", "'Resize(480)'", "[Resize(480), 3]",
    # unknown kwargs and transforms, misuse of arguments
    "Resize(480, evil=1)", "Resize(480, size=480)", "Resize(1, 2, 3, 4, 5)", "Foo(1)", "print(1)",
    "aug_transforms(sise=224)",
    # syntax errors and abuse of the parser
    "Resize(480", "Resize(480))", "Resize(480); import os", "Resize(480)\nimport os", "Resize(\x00)",
    "Resize(" + "(" * 250 + "1" + ")" * 250 + ")",
    "Resize(" + "1, " * 200 + ")",
]


@pytest.mark.parametrize("text", REFUSED)
def test_refused_with_spec_error(text):
    with pytest.raises(SpecError) as info:
        parse_transforms(text, "item")
    assert info.value.message.startswith("item")


@pytest.mark.parametrize("value", [480, None, ["Resize(1)"], b"Resize(1)"])
def test_non_text_is_refused(value):
    with pytest.raises(SpecError):
        parse_transforms(value)


def test_overly_long_input_is_refused_before_parsing():
    text = "[" + ", ".join(["Flip()"] * 100) + "]"
    assert len(text) > MAX_LENGTH
    with pytest.raises(SpecError, match="longer than"):
        parse_transforms(text)


def test_unknown_transform_lists_known_ones():
    with pytest.raises(SpecError) as info:
        parse_transforms("Rezise(480)")
    assert "Rezise" in info.value.message and "Resize" in info.value.hint


def test_unknown_kwarg_lists_the_arguments():
    with pytest.raises(SpecError) as info:
        parse_transforms("Resize(480, methd='squish')")
    assert "methd" in info.value.message and "method" in info.value.hint


# -- argument values: what fastai would fail on later is refused now -------------------------------

BAD_VALUES = [
    ("Resize('abc')", "Resize's size must be a whole number of pixels"),
    ("Resize(size=-5)", "Resize's size must be a whole number of pixels"),
    ("Resize(0)", "not 0"), ("Resize(1)", "from 2 to"), ("Resize(224.0)", "not 224.0"), ("Resize(True)", "not True"),
    ("Resize((640, 480, 3))", "or a pair of them"), ("Resize((640, -480))", "or a pair of them"),
    (f"Resize({MAX_SIZE + 1})", f"from 2 to {MAX_SIZE}"), ("Resize(None)", "Resize's size"),
    ("Resize()", "Resize needs a size"), ("RandomResizedCrop(min_scale=0.5)", "RandomResizedCrop needs a size"),
    ("aug_transforms(size='224')", "aug_transforms's size"), ("aug_transforms(size=(0, 224))", "size"),
    ("Resize(480, method='squash')", "method must be 'crop', 'pad', 'squish'"),
    ("Resize(480, method=PadMode.Zeros)", "not PadMode.Zeros"),
    ("Resize(480, pad_mode=ResizeMethod.Pad)", "pad_mode must be"), ("Resize(480, pad_mode='mirror')", "pad_mode"),
    ("Resize(480, resamples=(2, 9))", "resamples must be a pair"), ("aug_transforms(mode='cubic')", "mode must be"),
    ("aug_transforms(min_scale=0)", "min_scale must be a number greater than 0"),
    ("aug_transforms(min_scale=1.5)", "at most 1"), ("RandomResizedCrop(224, ratio=(0, 1))", "ratio"),
    ("aug_transforms(p_affine=2)", "p_affine must be a number from 0 to 1"), ("Flip(p=-0.1)", "Flip's p"),
    ("Brightness(max_lighting=1)", "max_lighting must be a number from 0 up to"),
    ("aug_transforms(max_rotate='10')", "max_rotate must be a number"), ("Rotate(max_deg=1e999)", "max_deg"),
    ("Rotate(max_deg=-10)", "max_deg must be a number of at least 0"), ("aug_transforms(max_rotate=-1)", "max_rotate"),
    ("aug_transforms(do_flip=1)", "do_flip must be True or False"), ("aug_transforms(min_zoom=0)", "min_zoom"),
    ("RandomErasing(max_count=0)", "max_count must be a positive integer"), ("Warp(magnitude=-1)", "magnitude"),
    ("aug_transforms(xtra_tfms=[1])", "xtra_tfms must be None"), ("Zoom(draw=1.1)", "draw must be left out"),
    ("[Resize(480), Flip(p=5)]", "Flip's p"), ("Dihedral(draw=3)", "draw must be left out"),
    ("Hue(max_hue=1)", "max_hue must be a number from 0 up to"),
    ("Zoom(min_zoom=2)", "min_zoom (2) is above its max_zoom (1.1)"),
    ("aug_transforms(min_zoom=1.5, max_zoom=1.2)", "min_zoom (1.5) is above its max_zoom (1.2)"),
    ("aug_transforms(mult=5)", "mult x max_lighting must stay below 1, not 1"),
    ("aug_transforms(mult=2, max_lighting=0.6)", "mult x max_lighting"),
]


@pytest.mark.parametrize("text, message", BAD_VALUES)
def test_bad_argument_values_are_refused(text, message):
    with pytest.raises(SpecError) as info:
        parse_transforms(text, "item")
    assert message in info.value.message and text.split("(")[0].strip("[") in info.value.message


def test_a_bad_size_says_how_to_write_one():
    with pytest.raises(SpecError) as info:
        parse_transforms("Resize('abc')", "item")
    assert info.value.hint == "for example size=224 or size=(320, 224)"


GOOD_VALUES = ["Resize((640, 480))", "Resize([640, 480])", f"Resize({MAX_SIZE})", "Flip(size=None)",
               "aug_transforms(size=(320, 224), min_scale=1, max_rotate=5, mult=0, mode='nearest')",
               "Resize(64, 'pad', PadMode.Border, (3, 0))", "Hue(max_hue=0.5)", "Zoom(min_zoom=0.5, max_zoom=0.9)",
               "Rotate(draw=None)", "RandomResizedCrop(224, ratio=(0.75, 1.25), max_scale=1.0, val_xtra=0)"]


@pytest.mark.parametrize("text", GOOD_VALUES)
def test_good_argument_values_are_accepted(text):
    assert parse_transforms(text)


def test_every_parameter_has_a_rule():
    for name, params in KNOWN_TRANSFORMS.items():
        assert set(params) <= set(RULES), name


# -- against the real fastai -----------------------------------------------------------------

@pytest.fixture(scope="module")
def fastai_ns():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import fastai.vision.all as vision
    return dict(vars(vision))


def _params(obj) -> tuple[str, ...]:
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(p.name for p in inspect.signature(obj).parameters.values() if p.kind in kinds and p.name != "self")


@pytest.mark.parametrize("name", sorted(KNOWN_TRANSFORMS))
def test_parameter_tables_match_fastai(fastai_ns, name):
    assert name in fastai_ns, f"fastai.vision.all has no {name}"
    assert KNOWN_TRANSFORMS[name] == _params(fastai_ns[name]), f"{name}'s parameters changed in fastai"


def test_constants_exist_in_fastai(fastai_ns):
    for holder, names in KNOWN_CONSTANTS.items():
        for name in names:
            assert hasattr(fastai_ns[holder], name), f"{holder}.{name}"


def _all_transforms(value, transform_type) -> bool:
    items = value if isinstance(value, list) else [value]
    return bool(items) and all(isinstance(item, transform_type) for item in items)


@pytest.mark.parametrize("text, canonical", ACCEPTED)
def test_canonical_text_builds_real_fastai_transforms(fastai_ns, text, canonical):
    value = eval(canonical, dict(fastai_ns))  # noqa: S307 - canonical text has passed the checker
    assert _all_transforms(value, fastai_ns["Transform"])


def test_default_spec_transforms_build(fastai_ns):
    from toolkit.specs.spec import RunSpec

    for text in (RunSpec.item, RunSpec.batch):
        assert _all_transforms(eval(parse_transforms(text), dict(fastai_ns)), fastai_ns["Transform"])


def test_resize_method_strings_mean_the_same_as_constants(fastai_ns):
    ns = dict(fastai_ns)
    a = eval(parse_transforms("Resize(64, method=ResizeMethod.Pad, pad_mode=PadMode.Zeros)"), ns)
    b = eval(parse_transforms("Resize(64, method='pad', pad_mode='zeros')"), ns)
    assert (a.method, a.pad_mode) == (b.method, b.pad_mode) == ("pad", "zeros")


def test_needs_size_is_fastais_required_argument(fastai_ns):
    for name in KNOWN_TRANSFORMS:
        required = [p.name for p in inspect.signature(fastai_ns[name]).parameters.values()
                    if p.default is inspect.Parameter.empty and p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD
                    and p.name != "self"]
        assert required == (["size"] if name in NEEDS_SIZE else []), name


@pytest.mark.parametrize("name", sorted(KNOWN_TRANSFORMS))
def test_fastais_own_defaults_pass_the_rules(fastai_ns, name):
    for param in inspect.signature(fastai_ns[name]).parameters.values():
        if param.name in KNOWN_TRANSFORMS[name] and param.default is not inspect.Parameter.empty:
            default = tuple(int(v) for v in param.default) if param.name == "resamples" else param.default
            size = "224, " if name in NEEDS_SIZE else ""
            assert parse_transforms(f"{name}({size}{param.name}={default!r})")


@pytest.mark.parametrize("text", GOOD_VALUES)
def test_accepted_values_build_real_fastai_transforms(fastai_ns, text):
    assert _all_transforms(eval(parse_transforms(text), dict(fastai_ns)), fastai_ns["Transform"])
