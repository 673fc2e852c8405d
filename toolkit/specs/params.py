"""Free parameters of a run, for the user's own templates: `--param NAME=VALUE` (repeatable), `params` in a
sweep row or [train]. A value is a Python literal (numbers, strings, True/False/None, lists, tuples and dicts
of those), parsed with ast.literal_eval and never executed; a bare word that is not one is a string. A
template reads them as `params.NAME`, the kernel as `PARAMS`. Tuples are kept as lists, as JSON keeps them,
so a run's parameters read back from the registry are the ones it was hashed with."""

from __future__ import annotations

import ast
import math
import re
from typing import Any

from toolkit.core.errors import SpecError

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_DEPTH = 5
MAX_TEXT = 2000


def parse_param(text: str) -> tuple[str, Any]:
    """One `--param NAME=VALUE`."""
    name, equals, value = text.partition("=")
    name = name.strip()
    if not equals or not name:
        raise SpecError(f"--param {text!r} is not NAME=VALUE", "for example --param eps=0.1")
    check_name(name, "--param")
    value = value.strip()
    if len(value) > MAX_TEXT:
        raise SpecError(f"--param {name}: the value is longer than {MAX_TEXT} characters")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if not re.fullmatch(r"[^\s'\"()\[\]{},]+", value):
            raise SpecError(f"--param {name}={value!r} is neither a Python literal nor a single word",
                            "quote text with spaces: --param note='\"two words\"'") from None
        parsed = value  # a bare word: text
    return name, check_value(parsed, f"--param {name}")


def parse_params(texts: list[str] | None) -> dict[str, Any]:
    """Every `--param`, the last of a name winning, as the command line reads left to right."""
    return dict(parse_param(text) for text in texts or [])


def check_params(value: object, where: str = "params") -> dict[str, Any]:
    """A params table (from a sweep file, toolkit.toml or the registry): names and values as --param takes them."""
    if not isinstance(value, dict):
        raise SpecError(f"{where} must be a table of NAME = VALUE, not {value!r}", "for example params = { eps = 0.1 }")
    return {check_name(str(k), where): check_value(v, f"{where}.{k}") for k, v in sorted(value.items())}


def check_name(name: str, where: str) -> str:
    if not NAME.match(name):
        raise SpecError(f"{where}: {name!r} is not a parameter name", "use letters, digits and _, as in label_eps")
    return name


def check_value(value: object, where: str, depth: int = 0) -> Any:
    """The value as stored: literals only, tuples as lists, finite numbers, string keys."""
    if depth > MAX_DEPTH:
        raise SpecError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SpecError(f"{where} must be a finite number, not {value}")
        return value
    if isinstance(value, (list, tuple)):
        return [check_value(v, where, depth + 1) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: check_value(v, f"{where}.{k}", depth + 1) for k, v in sorted(value.items())}
    raise SpecError(f"{where}: {value!r} is not a number, text, True/False/None, or a list or dict of those")


def describe(params: dict[str, Any]) -> str:
    """`eps=0.1 mixup=True` for tables (`-` when there are none)."""
    return " ".join(f"{k}={v!r}" for k, v in sorted(params.items())) or "-"
