"""Sweep files: a TOML table of runs that share defaults.

    [defaults]                      # any RunSpec field, shared by every row
    competition = "paddy-disease-classification"
    epochs = 12

    [[run]]                         # one table per run; a row's keys override the defaults
    name = "convnext-small-squish"
    arch = "convnext_small_in22k"
    item = "Resize(480, method='squish')"

Precedence for a row: the row > [defaults] > a --competition flag > toolkit.toml's [train] and competition.
Every row is validated with `spec.build_spec`; errors name the file and the row.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.core.errors import SpecError
from toolkit.specs.spec import RunSpec

TOP_KEYS = ("description", "defaults", "run")


@dataclass(frozen=True)
class SweepRow:
    values: dict[str, Any]
    where: str  # "<file>: run N (name)" for error messages


@dataclass(frozen=True)
class Sweep:
    path: Path
    description: str
    rows: list[SweepRow] = field(default_factory=list)


def load_sweep(path: Path, base: dict[str, Any] | None = None) -> Sweep:
    """Parse a sweep file into rows of raw values (`base` below the file's defaults). Checks keys and names;
    full validation happens when `plan.plan_runs` builds each row's spec (with the same `where`)."""
    path = Path(path)
    data = _read_toml(path)
    for key in data:
        if key not in TOP_KEYS:
            close = difflib.get_close_matches(key, TOP_KEYS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "use a [defaults] table and [[run]] rows"
            raise SpecError(f"{path.name}: unknown top-level key '{key}'", hint)
    defaults = data.get("defaults", {})
    rows = data.get("run", [])
    if not isinstance(defaults, dict):
        raise SpecError(f"{path.name}: 'defaults' must be a table ([defaults])")
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise SpecError(f"{path.name}: no runs", "add one [[run]] table per run")
    description = data.get("description", "")
    return Sweep(path, description if isinstance(description, str) else "",
                 _rows(path, rows, {**(base or {}), **defaults}))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"sweep file {path} does not exist") from None
    except IsADirectoryError:
        raise SpecError(f"sweep file {path} is a folder",
                        "name a .toml file, such as sweeps/paddy-small.toml") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path.name} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise SpecError(f"sweep file {path} cannot be read ({exc.strerror})") from None


def _rows(path: Path, rows: list[dict], defaults: dict[str, Any]) -> list[SweepRow]:
    """Each [[run]] over the defaults, named for errors by its number and name; names must differ."""
    names: dict[str, int] = {}
    out = []
    for number, row in enumerate(rows, 1):
        label = row.get("name") or row.get("arch") or ""
        where = f"{path.name}: run {number}" + (f" ({label})" if label else "")
        name = row.get("name")
        if isinstance(name, str) and name:
            if name in names:
                raise SpecError(f"{where}: duplicate run name '{name}' (also run {names[name]})",
                                "give every [[run]] a different name")
            names[name] = number
        out.append(SweepRow({**defaults, **row}, where))
    return out


def check_unique(specs: list[RunSpec], rows: list[SweepRow]) -> None:
    """Two rows that train the same thing would collapse into one kernel: refuse them."""
    seen: dict[str, str] = {}
    for spec, row in zip(specs, rows):
        if spec.content_hash in seen:
            raise SpecError(f"{row.where}: the same run as {seen[spec.content_hash]}",
                            "change a parameter (seed, lr, transforms, ...) or drop the row")
        seen[spec.content_hash] = row.where
