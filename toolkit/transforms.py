"""Transform expressions are data, not code.

`--item "Resize(480, method='squish')"` is parsed with `ast` and accepted only as a call
(or a list of calls) to a known fastai transform with literal arguments. The canonical
text that comes out is what the notebook template writes, so nothing a user typed is
ever executed unchecked.
"""

from __future__ import annotations

import ast

from .errors import SpecError

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
