"""Transform expressions are data, not code.

`--item "Resize(480, method='squish')"` is parsed with `ast` and accepted only as a call
(or a list of calls) to a known fastai transform with literal arguments. The canonical
text that comes out is what the notebook template writes, so nothing a user typed is
ever executed unchecked.
"""

from __future__ import annotations

import ast
import math
from typing import Any, Callable, NamedTuple

from toolkit.core.errors import SpecError

_SHARED = ("size", "mode", "pad_mode", "align_corners", "batch", "p", "draw")
# Parameter names per transform, in positional order (checked against fastai in the tests).
KNOWN_TRANSFORMS: dict[str, tuple[str, ...]] = {
    "Resize": ("size", "method", "pad_mode", "resamples"),
    "RandomResizedCrop": ("size", "min_scale", "ratio", "resamples", "val_xtra", "max_scale"),
    "CropPad": ("size", "pad_mode"),
    "RandomCrop": ("size",),
    "aug_transforms": ("mult", "do_flip", "flip_vert", "max_rotate", "min_zoom", "max_zoom", "max_lighting",
                       "max_warp", "p_affine", "p_lighting", "xtra_tfms", "size", "mode", "pad_mode",
                       "align_corners", "batch", "min_scale"),
    "Flip": ("p", "draw", "size", "mode", "pad_mode", "align_corners", "batch"),
    "Dihedral": ("p", "draw", "size", "mode", "pad_mode", "batch", "align_corners"),
    "Rotate": ("max_deg", "p", "draw", "size", "mode", "pad_mode", "align_corners", "batch"),
    "Zoom": ("min_zoom", "max_zoom", "p", "draw", "draw_x", "draw_y", "size", "mode", "pad_mode", "batch",
             "align_corners"),
    "Warp": ("magnitude", "p", "draw_x", "draw_y", "size", "mode", "pad_mode", "batch", "align_corners"),
    "Brightness": ("max_lighting", "p", "draw", "batch"),
    "Contrast": ("max_lighting", "p", "draw", "batch"),
    "Saturation": ("max_lighting", "p", "draw", "batch"),
    "Hue": ("max_hue", "p", "draw", "batch"),
    "RandomErasing": ("p", "sl", "sh", "min_aspect", "max_count"),
}
# The only attribute access allowed: fastai's enum-like constants, as the seed uses them.
KNOWN_CONSTANTS = {
    "ResizeMethod": ("Squish", "Crop", "Pad"),
    "PadMode": ("Zeros", "Border", "Reflection"),
}
MAX_LENGTH = 500
# Transforms that fastai cannot build without a size.
NEEDS_SIZE = ("Resize", "RandomResizedCrop", "CropPad", "RandomCrop")
MAX_SIZE = 8192  # pixels a side: a larger image would exhaust a kernel's memory before training starts


def parse_transforms(text: str, what: str = "transform") -> str:
    """Validate a transform expression and return its canonical text ('' for none)."""
    if not isinstance(text, str):
        raise SpecError(f"{what} must be text such as \"Resize(224)\", not {text!r}")
    text = text.strip()
    if text in ("", "None", "[]"):
        return ""
    if len(text) > MAX_LENGTH:
        raise SpecError(f"{what} expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        raise SpecError(f"{what} {text!r} is not a valid expression",
                        "write a call such as Resize(480, method='squish')") from None
    body = tree.body
    calls = body.elts if isinstance(body, (ast.List, ast.Tuple)) else [body]
    if not calls:
        return ""
    for call in calls:
        _check_call(call, what, text)
    canonical = [ast.unparse(call) for call in calls]
    return canonical[0] if len(canonical) == 1 and not isinstance(body, (ast.List, ast.Tuple)) \
        else "[" + ", ".join(canonical) + "]"


def _check_call(node: ast.AST, what: str, text: str) -> None:
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise SpecError(f"{what} {text!r} must be a call to a fastai transform",
                        f"known transforms: {', '.join(KNOWN_TRANSFORMS)}")
    name = node.func.id
    if name not in KNOWN_TRANSFORMS:
        raise SpecError(f"{what} {text!r} uses unknown transform '{name}'",
                        f"known transforms: {', '.join(KNOWN_TRANSFORMS)}")
    params = KNOWN_TRANSFORMS[name]
    if len(node.args) > len(params):
        raise SpecError(f"{what} {text!r}: {name} takes at most {len(params)} positional arguments")
    seen = set(params[: len(node.args)])
    for keyword in node.keywords:
        if keyword.arg is None or keyword.arg not in params:
            raise SpecError(f"{what} {text!r}: {name} has no argument '{keyword.arg or '**'}'",
                            f"its arguments are: {', '.join(params)}")
        if keyword.arg in seen:
            raise SpecError(f"{what} {text!r}: argument '{keyword.arg}' given twice")
        seen.add(keyword.arg)
    for value in [*node.args, *(k.value for k in node.keywords)]:
        _check_literal(value, what, text)
    given = {**dict(zip(params, node.args)), **{k.arg: k.value for k in node.keywords}}
    if name in NEEDS_SIZE and given.get("size") is None:
        raise SpecError(f"{what} {text!r}: {name} needs a size", f"for example {name}(224)")
    for param, value in given.items():
        _check_value(name, param, value, what, text)
    _check_together(name, {k: _value(v) for k, v in given.items()}, what, text)


def _check_literal(node: ast.AST, what: str, text: str) -> None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
            and isinstance(node.operand.value, (int, float)) and not isinstance(node.operand.value, bool):
        return
    if isinstance(node, (ast.Tuple, ast.List)):
        for element in node.elts:
            _check_literal(element, what, text)
        return
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
            and node.attr in KNOWN_CONSTANTS.get(node.value.id, ()):
        return
    raise SpecError(f"{what} {text!r}: argument '{ast.unparse(node)}' is not a literal value",
                    "use numbers, strings, tuples, ResizeMethod.X or PadMode.X")


# -- argument values: what fastai would accept when the kernel builds the transform ---------------

class _Constant(NamedTuple):
    holder: str  # ResizeMethod or PadMode
    value: str  # what the constant stands for, e.g. 'squish'


def _value(node: ast.AST) -> Any:
    """The Python value of a literal that `_check_literal` accepted."""
    if isinstance(node, ast.Attribute):
        return _Constant(node.value.id, node.attr.lower())  # type: ignore[attr-defined]
    if isinstance(node, (ast.Tuple, ast.List)):
        return [_value(e) for e in node.elts]
    return ast.literal_eval(node)


def _number(low: float = -math.inf, high: float = math.inf, open_low: bool = False,
            open_high: bool = False) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        return (low < v if open_low else low <= v) and (v < high if open_high else v <= high)
    return ok


def _integer(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _pair(item: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and len(v) == 2 and all(item(x) for x in v)


def _choice(holder: str | None, *names: str) -> Callable[[Any], bool]:
    return lambda v: (isinstance(v, str) and v in names) or (isinstance(v, _Constant) and v.holder == holder)


_side = _integer(2, MAX_SIZE)  # fastai's affine transforms divide by size - 1
_finite = _number()
# fastai's draw arguments fix the random choice for every image (its own tests use them), and each
# transform reads them differently (a Dihedral index, a Brightness logit, a list as long as every batch).
_DRAW = (lambda v: v is None, "left out (it would fix the augmentation for every image)")
_PROBABILITY = (_number(0, 1), "a number from 0 to 1")
_POSITIVE = (_number(0, open_low=True), "a number greater than 0")
_NON_NEGATIVE = (_number(0), "a number of at least 0")
_FLAG = (lambda v: isinstance(v, bool), "True or False")
# One rule per parameter name in KNOWN_TRANSFORMS: (accepts the value, what it must be).
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "size": (lambda v: _side(v) or _pair(_side)(v), f"a whole number of pixels from 2 to {MAX_SIZE} or a pair of them"),
    "method": (_choice("ResizeMethod", "crop", "pad", "squish"), "'crop', 'pad', 'squish' or ResizeMethod.X"),
    "pad_mode": (_choice("PadMode", "zeros", "border", "reflection"), "'zeros', 'border', 'reflection' or PadMode.X"),
    "mode": (_choice(None, "bilinear", "nearest", "bicubic"), "'bilinear', 'nearest' or 'bicubic'"),
    "resamples": (_pair(_integer(0, 5)), "a pair of PIL resampling codes from 0 to 5, such as (2, 0)"),
    "ratio": (_pair(_number(0, open_low=True)), "a pair of numbers greater than 0"),
    "min_scale": (_number(0, 1, open_low=True), "a number greater than 0 and at most 1"),
    "max_scale": (_number(0, 1, open_low=True), "a number greater than 0 and at most 1"),
    "max_lighting": (_number(0, 1, open_high=True), "a number from 0 up to (not including) 1"),
    "p": _PROBABILITY, "p_affine": _PROBABILITY, "p_lighting": _PROBABILITY, "sl": _PROBABILITY, "sh": _PROBABILITY,
    "mult": _NON_NEGATIVE, "val_xtra": _NON_NEGATIVE, "max_warp": _NON_NEGATIVE, "magnitude": _NON_NEGATIVE,
    "max_hue": (_number(0, 1, open_high=True), "a number from 0 up to (not including) 1"),
    "min_zoom": _POSITIVE, "max_zoom": _POSITIVE, "min_aspect": _POSITIVE,
    "max_rotate": _NON_NEGATIVE, "max_deg": _NON_NEGATIVE,  # fastai draws from (-max, max)
    "max_count": (_integer(1, 1000), "a positive integer"),
    "do_flip": _FLAG, "flip_vert": _FLAG, "align_corners": _FLAG, "batch": _FLAG,
    "draw": _DRAW, "draw_x": _DRAW, "draw_y": _DRAW,
    "xtra_tfms": (lambda v: v is None, "None (list extra transforms next to this one instead)"),
}


def _check_value(name: str, param: str, node: ast.AST, what: str, text: str) -> None:
    accepts, wanted = RULES[param]
    value = _value(node)
    if param == "size" and value is None and name not in NEEDS_SIZE:
        return
    if not accepts(value):
        hint = "for example size=224 or size=(320, 224)" if param == "size" else ""
        raise SpecError(f"{what} {text!r}: {name}'s {param} must be {wanted}, not {ast.unparse(node)}", hint)


def _check_together(name: str, values: dict[str, Any], what: str, text: str) -> None:
    """Limits that involve two arguments (fastai's defaults fill in the one not given)."""
    if name in ("aug_transforms", "Zoom"):
        low, high = values.get("min_zoom", 1.0), values.get("max_zoom", 1.1)
        if low > high:
            raise SpecError(f"{what} {text!r}: {name}'s min_zoom ({low}) is above its max_zoom ({high})",
                            "fastai's default max_zoom is 1.1")
    if name == "aug_transforms":
        lighting = values.get("mult", 1.0) * values.get("max_lighting", 0.2)
        if lighting >= 1:
            raise SpecError(f"{what} {text!r}: mult x max_lighting must stay below 1, not {lighting:g}",
                            "fastai multiplies max_lighting by mult; the default max_lighting is 0.2")


def image_size(item: str, batch: str) -> tuple[int, int] | None:
    """The size images reach the model at: the batch transforms' `size`, else the item transforms'."""
    for text in (batch, item):
        for call in _calls(text):
            params = KNOWN_TRANSFORMS.get(getattr(call.func, "id", ""), ())
            given = {k.arg: k.value for k in call.keywords}
            given.update({params[i]: a for i, a in enumerate(call.args) if i < len(params)})
            if "size" in given:
                try:
                    value = ast.literal_eval(given["size"])
                except ValueError:
                    continue
                if isinstance(value, int):
                    return value, value
                if isinstance(value, (tuple, list)) and len(value) == 2:
                    return int(value[0]), int(value[1])
    return None


def _calls(text: str) -> list[ast.Call]:
    try:
        tree = ast.parse(text or "None", mode="eval").body
    except SyntaxError:
        return []
    items = tree.elts if isinstance(tree, (ast.List, ast.Tuple)) else [tree]
    return [c for c in items if isinstance(c, ast.Call)]


def transform_names(text: str) -> set[str]:
    """The fastai names a (validated) transform expression uses: its transforms and constants' holders."""
    if not text:
        return set()
    return {node.id for node in ast.walk(ast.parse(text, mode="eval")) if isinstance(node, ast.Name)}
