"""The one place that reads toolkit.toml, environment variables and defaults.

Precedence: flag > environment (TOOLKIT_*) > toolkit.toml > default.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.core.errors import ConfigError

CONFIG_FILE = "toolkit.toml"
BACKENDS = ("local", "kaggle", "ray")
# How the local backend mounts a kernel's inputs: Kaggle's layout today (input/competitions/<slug>,
# input/notebooks/<owner>/<slug>, input/datasets/<owner>/<slug>) or the older flat one (input/<slug>).
INPUT_LAYOUTS = ("current", "flat")
# Kaggle's longest session (12 h for CPU and GPU notebooks); a push's sessionTimeoutSeconds "must be lower than
# the global maximum" (kagglesdk 0.1.38, ApiSaveKernelRequest.session_timeout_seconds).
KAGGLE_MAX_SESSION_S = 12 * 3600
# GPU batch sessions may be capped lower: 2026 messages speak of 9 h (kaggle-benchmarks #79; unconfirmed). The
# default limit a push sends stays under it, and kpush plans each session to end well inside that limit
# (runs/sessions.PLAN_SHARE). Where sessions are known to run longer, raise session_timeout_s (below 12 h).
KAGGLE_GPU_SESSION_S = 9 * 3600


@dataclass(frozen=True)
class RaySettings:
    """toolkit.toml's [ray] table: which cluster, and the paths its nodes share (backends/ray)."""

    address: str = ""  # its job server, http://HOST:8265 (RAY_ADDRESS, Ray's own variable, overrides it)
    data: Path | None = None  # competitions as every node reads them (None: competitions_root)
    shared: Path | None = None  # sandboxes and outputs: a path every node reads and writes (None: .toolkit/ray)
    python: str = ""  # the interpreter nodes run kernels with ("": this one, at the same path)
    cpus_per_gpu: float = 2.0  # CPUs asked with each GPU (Kaggle's T4 x2: 4 cores, 2 GPUs); a CPU kernel asks this
    autoscaling: bool = False  # nodes start on demand: a request no node meets now is queued, not refused


_RAY_TYPES: dict[str, type | tuple[type, ...]] = {"address": str, "data": str, "shared": str, "python": str,
                                                  "cpus_per_gpu": (int, float), "autoscaling": bool}


@dataclass(frozen=True)
class Config:
    project_dir: Path
    backend: str = "local"
    competition: str = "digits-demo"
    competitions_root: Path = Path("competitions")
    datasets_root: Path = Path("datasets")
    username: str = ""
    concurrency: int = 1
    poll_initial_s: float = 30.0
    poll_max_s: float = 240.0
    wait_timeout_s: float = 12 * 3600.0
    # A running run is flagged stalled when its log has had no new progress line for stall_factor times its own
    # epoch time (its estimate before the first epoch), and never before stall_min_s.
    stall_factor: float = 3.0
    stall_min_s: float = 300.0
    max_output_mb: int = 1024
    accelerator: str = "NvidiaTeslaT4"
    internet: bool = True
    private: bool = True
    session_timeout_s: int = KAGGLE_GPU_SESSION_S - 300  # 5 minutes under the 9 h GPU sessions may have
    api_timeout_s: float = 300.0  # the kaggle client sets no timeouts: one call may take this long at most
    code_competition: bool = False
    input_layout: str = "current"
    rerun_limit_h: float = 9.0  # a code competition's limit on the rerun of the submitted notebook
    # Competitions labelled by a CSV (images directly in train_images/): which CSV and columns; empty: detect.
    labels_csv: str = ""
    id_column: str = ""
    label_column: str = ""
    train: dict[str, Any] = field(default_factory=dict)
    ray: RaySettings = field(default_factory=RaySettings)
    given: frozenset[str] = frozenset()  # keys set by a flag, the environment or toolkit.toml

    @property
    def explicit_poll(self) -> bool:
        """Whether the user set polling intervals (else each backend uses its own)."""
        return "poll_initial_s" in self.given or "poll_max_s" in self.given

    @property
    def labels_given(self) -> dict[str, str]:
        """The configured labels CSV and columns, as competition.labelling takes them."""
        return {"csv": self.labels_csv, "id": self.id_column, "label": self.label_column}

    @property
    def state_dir(self) -> Path:
        return self.project_dir / ".toolkit"

    @property
    def store_path(self) -> Path:
        return self.state_dir / "runs.sqlite"

    def image_record(self, competition: str) -> Path:
        """The images of a competition here that decoded well, so that the next check skips them while unchanged."""
        return self.state_dir / "checked-images" / f"{competition}.json"

    @property
    def kernels_dir(self) -> Path:
        return self.project_dir / "kernels"

    @property
    def templates_dir(self) -> Path:
        """The project's own templates (the user's recipes: `--template NAME`)."""
        return self.project_dir / "templates"

    @property
    def outputs_dir(self) -> Path:
        return self.project_dir / "outputs"

    def resolve(self, path: Path) -> Path:
        """A configured path, relative to the project unless absolute."""
        return path if path.is_absolute() else self.project_dir / path


# Keys a user may set, with the type each must have in toolkit.toml.
_TYPES: dict[str, type | tuple[type, ...]] = {
    "backend": str, "competition": str, "competitions_root": str, "datasets_root": str,
    "username": str, "concurrency": int, "poll_initial_s": (int, float), "poll_max_s": (int, float),
    "wait_timeout_s": (int, float), "max_output_mb": int, "accelerator": str, "internet": bool,
    "private": bool, "session_timeout_s": int, "api_timeout_s": (int, float), "code_competition": bool,
    "input_layout": str, "rerun_limit_h": (int, float), "train": dict, "ray": dict,
    "stall_factor": (int, float), "stall_min_s": (int, float),
    "labels_csv": str, "id_column": str, "label_column": str,
}
_PATHS = {"competitions_root", "datasets_root"}
# Durations that must be finite and above zero (a NaN would pass every `<` test and poll or wait forever).
_SECONDS = ("poll_initial_s", "poll_max_s", "wait_timeout_s", "session_timeout_s", "api_timeout_s", "stall_min_s")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def load_config(project_dir: Path | None = None, **flags: Any) -> Config:
    """Build the configuration; `flags` are command-line values (None means not given)."""
    project = _project_dir(project_dir)
    values: dict[str, Any] = {}
    values.update(_read_file(project / CONFIG_FILE))
    values.update(_read_env())
    values.update({k: v for k, v in flags.items() if v is not None})
    for key in _PATHS & values.keys():
        values[key] = Path(values[key])
    given = frozenset(values)
    values["ray"] = _ray_settings(values.get("ray", {}))
    config = Config(project_dir=project, given=given, **values)
    _validate(config)
    return config


def _project_dir(given: Path | None) -> Path:
    """The project folder; it must exist, since commands create their state inside it."""
    from_env = os.environ.get("TOOLKIT_PROJECT")
    project = Path(given or from_env or Path.cwd()).resolve()
    if not project.is_dir():
        source = f"TOOLKIT_PROJECT={from_env}" if not given and from_env else f"project folder {project}"
        state = "is not a folder" if project.exists() else "does not exist"
        raise ConfigError(f"{source} {state}", "create the folder first or point TOOLKIT_PROJECT at an existing one")
    return project


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    if not path.is_file():
        raise ConfigError(f"{path} is not a file", f"remove it, or make {path.name} a TOML file")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path.name} is not valid TOML: {exc}", "fix the file or remove it") from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read ({exc.strerror})", "fix its permissions or remove it") from None
    for key, value in data.items():
        if key not in _TYPES:
            raise ConfigError(f"{path.name}: unknown key '{key}'", f"known keys: {', '.join(sorted(_TYPES))}")
        expected = _TYPES[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{path.name}: '{key}' must be {_type_name(expected)}, not {value!r}")
    return data


def _ray_settings(table: dict[str, Any]) -> RaySettings:
    """[ray], checked key by key; Ray's own RAY_ADDRESS overrides its address."""
    for key, value in table.items():
        if key not in _RAY_TYPES:
            raise ConfigError(f"{CONFIG_FILE}: unknown key '{key}' in [ray]", f"known keys: {', '.join(_RAY_TYPES)}")
        expected = _RAY_TYPES[key]
        if not isinstance(value, expected) or (expected != bool and isinstance(value, bool)):
            raise ConfigError(f"{CONFIG_FILE}: [ray] '{key}' must be {_type_name(expected)}, not {value!r}")
    values = {**table, **({"address": os.environ["RAY_ADDRESS"]} if os.environ.get("RAY_ADDRESS") else {})}
    for key in ("data", "shared"):
        values[key] = Path(values[key]) if values.get(key) else None
    return RaySettings(**values)


def _read_env() -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, expected in _TYPES.items():
        raw = os.environ.get(f"TOOLKIT_{key.upper()}")
        if raw is None or expected is dict:
            continue
        values[key] = _parse_env(key, raw, expected)
    return values


def _parse_env(key: str, raw: str, expected: type | tuple[type, ...]) -> Any:
    name = f"TOOLKIT_{key.upper()}"
    if expected is bool:
        if raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise ConfigError(f"{name}={raw!r} is not a boolean", "use true or false")
    if expected in (int, (int, float)):
        try:
            number = int(raw) if expected is int else float(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a number") from None
        if not math.isfinite(number):
            raise ConfigError(f"{name}={raw!r} is not a finite number", "use a number such as 30")
        return number
    return raw


def _validate(config: Config) -> None:
    if config.backend not in BACKENDS:
        raise ConfigError(f"unknown backend '{config.backend}'", f"use one of: {', '.join(BACKENDS)}")
    if config.concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, not {config.concurrency}")
    for key in _SECONDS:
        value = getattr(config, key)
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{key} must be a positive number of seconds, not {value}",
                              f"set it in {CONFIG_FILE} or TOOLKIT_{key.upper()}, e.g. {getattr(Config, key):g}")
    if config.session_timeout_s >= KAGGLE_MAX_SESSION_S:
        raise ConfigError(f"session_timeout_s must be lower than Kaggle's 12-hour maximum ({KAGGLE_MAX_SESSION_S} s), "
                          f"not {config.session_timeout_s:g}", f"e.g. {Config.session_timeout_s} (the default)")
    if config.poll_max_s < config.poll_initial_s:
        raise ConfigError(f"poll_max_s ({config.poll_max_s:g}) must be at least "
                          f"poll_initial_s ({config.poll_initial_s:g})")
    if not (math.isfinite(config.rerun_limit_h) and config.rerun_limit_h > 0):
        raise ConfigError(f"rerun_limit_h must be a positive number of hours, not {config.rerun_limit_h}")
    if not (math.isfinite(config.stall_factor) and config.stall_factor >= 1):
        raise ConfigError(f"stall_factor must be a number of at least 1, not {config.stall_factor}",
                          f"e.g. {Config.stall_factor:g}: a run is stalled after that many of its epoch times")
    if config.input_layout not in INPUT_LAYOUTS:
        raise ConfigError(f"unknown input_layout '{config.input_layout}'", f"use one of: {', '.join(INPUT_LAYOUTS)}")
    if config.max_output_mb < 1:
        raise ConfigError(f"max_output_mb must be at least 1, not {config.max_output_mb}")
    _validate_labels(config)
    if not (math.isfinite(config.ray.cpus_per_gpu) and config.ray.cpus_per_gpu > 0):
        raise ConfigError(f"[ray] cpus_per_gpu must be a positive number, not {config.ray.cpus_per_gpu}",
                          f"e.g. {RaySettings.cpus_per_gpu:g}: the CPUs a kernel asks for with each GPU")


def _validate_labels(config: Config) -> None:
    """labels_csv names a CSV file at the competition root; the id and label columns differ."""
    name = config.labels_csv
    if name and (Path(name).name != name or name in (".", "..") or not name.lower().endswith(".csv")):
        raise ConfigError(f"labels_csv must be the name of a CSV file at the competition root, not {name!r}",
                          "e.g. labels_csv = \"train.csv\"")
    if config.id_column and config.id_column == config.label_column:
        raise ConfigError(f"id_column and label_column are both '{config.id_column}'",
                          "the id column holds image file names, the label column their classes")


def _type_name(expected: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false", dict: "a table", float: "a number"}
    if isinstance(expected, tuple):
        return "a number"
    return names.get(expected, expected.__name__)


def replace(config: Config, **changes: Any) -> Config:
    return dataclasses.replace(config, **changes)
