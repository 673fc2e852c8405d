"""Sweep files: a TOML table of runs that share defaults, and the GPU-hour estimate that guards the quota.

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

from .errors import SpecError, ToolkitError
from .project import Project
from .spec import RunSpec

TOP_KEYS = ("description", "defaults", "run")
# Minutes per epoch assumed when no finished run of the same arch, transforms and batch size is on record:
# about what the seed's small models took on a Kaggle T4 (01:30-03:30 per epoch).
DEFAULT_MIN_PER_EPOCH = 2.0
# Kernel start-up (image pull, imports, data listing) per session, in minutes.
SESSION_OVERHEAD_MIN = 3.0


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


# -- GPU-hour estimate ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    spec: RunSpec
    minutes_per_epoch: float
    measured: bool  # from a finished run on record, else DEFAULT_MIN_PER_EPOCH

    @property
    def minutes(self) -> float:
        """Training epochs (+1 frozen when fine-tuning) + about one epoch of TTA, plus start-up."""
        epochs = self.spec.epochs + (1 if self.spec.pretrained else 0) + 1
        return epochs * self.minutes_per_epoch + SESSION_OVERHEAD_MIN


def estimate(project: Project, specs: list[RunSpec]) -> list[Estimate]:
    """Minutes per epoch from finished runs on this backend with the same arch, transforms and batch size."""
    done = [r for r in project.store.runs(backend=project.config.backend, kind="train")
            if isinstance(r.metrics.get("minutes_per_epoch"), (int, float))]
    out = []
    for spec in specs:
        key = (spec.arch, spec.item, spec.batch, spec.bs)
        seen = [float(r.metrics["minutes_per_epoch"]) for r in done
                if (r.spec.get("arch"), r.spec.get("item"), r.spec.get("batch"), r.spec.get("bs")) == key]
        if seen:
            out.append(Estimate(spec, sum(seen) / len(seen), True))
        else:
            out.append(Estimate(spec, DEFAULT_MIN_PER_EPOCH, False))
    return out


def check_quota(project: Project, estimates: list[Estimate], force: bool = False) -> str:
    """Compare the estimate with the backend's GPU hours left; refuse (unless forced) when it does not fit.
    Returns a line to show the user ("" when the backend has no quota)."""
    hours = sum(e.minutes for e in estimates) / 60
    quota = project.backend.quota()
    if quota is None:
        return ""
    line = (f"estimated {hours:.1f} GPU hours for {len(estimates)} runs; {quota.left_hours:.1f} of "
            f"{quota.allowed_hours:.0f} hours left this week")
    if hours > quota.left_hours and not force:
        raise ToolkitError(f"sweep needs about {hours:.1f} GPU hours but only {quota.left_hours:.1f} are left "
                           f"(quota refreshes {quota.refresh or 'weekly'})",
                           "drop runs or epochs, wait for the refresh, or pass --force to push anyway")
    return line


def plan_sweep(project: Project, path: Path, competition: str | None = None, pretrained: bool | None = None):
    """Load, validate and render every run of a sweep file (nothing stored or pushed yet)."""
    from .plan import plan_runs
    from .spec import build_spec

    base = {**project.config.train, "competition": competition or project.config.competition}
    sweep = load_sweep(path, base)
    check_unique([build_spec(r.values, r.where) for r in sweep.rows], sweep.rows)
    return sweep, plan_runs(project, [(r.values, r.where) for r in sweep.rows], pretrained)
