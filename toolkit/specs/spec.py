"""RunSpec: what one training run is, its validation, its slug and content hash."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from toolkit.core.errors import SpecError
from toolkit.specs.params import check_params
from toolkit.specs.transforms import parse_transforms

PRECISIONS = ("fp16", "bf16", "fp32")
# Training kernel data path: "fast" decodes JPEGs and does the item Resize on the GPU in batches;
# "seed" is the seed's CPU pipeline exactly; "auto" is fast when the kernel has a GPU, else seed.
PIPELINES = ("auto", "fast", "seed")
SLUG_MIN, SLUG_MAX = 5, 50
HASH_LEN = 8
# Competition slugs as Kaggle's URLs hold them: older ones in mixed case (GiveMeSomeCredit,
# LANL-Earthquake-Prediction, kaggle-cli#144), as short as `R` or `hhp`, some starting with a digit.
_COMPETITION_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,98}[A-Za-z0-9])?$")
_ARCHS_FILE = Path(__file__).resolve().parents[1] / "data" / "timm_archs.txt"


@dataclass(frozen=True)
class RunSpec:
    """One training run. Defaults are the seed's `train()` values. In a run of the user's own template, a field
    the template does not declare is None (TEMPLATE_OWN): the template decides, and the run shows nothing."""

    arch: str
    competition: str
    item: str | None = "Resize(480, method='squish')"
    batch: str | None = "aug_transforms(size=224, min_scale=0.75)"
    epochs: int | None = 12
    lr: float | None = 0.01
    # Batches per optimizer step. fastai's GradientAccumulation counts samples, so the
    # template passes accum * bs; 1 means no accumulation.
    accum: int | None = 1
    bs: int | None = 64
    seed: int | None = 42
    precision: str | None = "fp16"
    pretrained: bool = True
    valid_pct: float | None = 0.2
    pipeline: str | None = "auto"
    name: str = ""
    # The user's own recipe: a template of the project's templates/ folder ('' = the shipped training template),
    # the digest of its text (set when it is rendered, so an edited template is another run), and free
    # parameters the template reads as params.NAME (specs/params.py).
    template: str = ""
    template_digest: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, values: dict[str, Any]) -> RunSpec:
        """A spec as the registry stored it, unvalidated (it was validated when recorded); fields a later
        toolkit added take their defaults, fields it dropped are left out."""
        return cls(**{k: v for k, v in values.items() if k in FIELDS})

    @property
    def content_hash(self) -> str:
        """Short hash of everything that changes the result (the name does not). The recipe fields count only
        when set, so a run of the shipped template keeps the hash it had before they existed."""
        fields = {k: v for k, v in self.to_dict().items() if k != "name" and not (k in RECIPE and not v)}
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:HASH_LEN]

    @property
    def slug(self) -> str:
        return make_slug(self.name or self.arch, self.content_hash)


FIELDS = {f.name: f for f in dataclasses.fields(RunSpec)}
RECIPE = ("template", "template_digest", "params")
# Fields a run of the user's own template may leave to it (None): what its template does not declare.
TEMPLATE_OWN = ("item", "batch", "epochs", "lr", "accum", "bs", "seed", "precision", "valid_pct", "pipeline")
# The shipped templates' names: a project template may extend them, not take their place.
SHIPPED_TEMPLATES = ("train", "ensemble", "pack")
TEMPLATE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def build_spec(values: dict[str, Any], where: str = "") -> RunSpec:
    """Validate raw values (from flags, toolkit.toml or a sweep row) into a RunSpec."""
    prefix = f"{where}: " if where else ""
    for key in values:
        if key not in FIELDS:
            close = difflib.get_close_matches(key, FIELDS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(FIELDS)}"
            raise SpecError(f"{prefix}unknown run parameter '{key}'", hint)
    for key in ("arch", "competition"):
        if key not in values:
            raise SpecError(f"{prefix}'{key}' is required")
    own = values.get("template") and set(TEMPLATE_OWN)  # a template's run may leave these to the template
    clean = {k: v if own and k in own and v is None else check_field(k, v, prefix) for k, v in values.items()}
    return RunSpec(**clean)


def check_field(key: str, value: Any, prefix: str = "") -> Any:
    """One run field's value, validated (SpecError naming it otherwise)."""
    if key == "arch":
        return check_arch(_want(key, value, str, prefix), prefix)
    if key == "competition":
        return check_competition_name(_want(key, value, str, prefix), prefix)
    if key in ("item", "batch"):
        return parse_transforms(value, f"{prefix}{key}")
    if key in ("epochs", "accum", "bs"):
        number = _want(key, value, int, prefix)
        limits = {"epochs": (1, 1000), "accum": (1, 64), "bs": (1, 4096)}[key]
        if not limits[0] <= number <= limits[1]:
            raise SpecError(f"{prefix}{key} must be between {limits[0]} and {limits[1]}, not {number}")
        return number
    if key in ("lr", "valid_pct"):
        number = float(_want(key, value, (int, float), prefix))
        low, high = (0.0, 10.0) if key == "lr" else (0.0, 1.0)
        if not (math.isfinite(number) and low < number < high):
            raise SpecError(f"{prefix}{key} must be greater than {low:g} and less than {high:g}, not {value}")
        return number
    if key == "seed":
        if value is None:
            return None
        number = _want(key, value, int, prefix)
        if not 0 <= number < 2**32:
            raise SpecError(f"{prefix}seed must be between 0 and 2**32-1, not {number}")
        return number
    if key == "precision":
        if value not in PRECISIONS:
            raise SpecError(f"{prefix}precision must be one of {', '.join(PRECISIONS)}, not {value!r}")
        return value
    if key == "pipeline":
        if value not in PIPELINES:
            raise SpecError(f"{prefix}pipeline must be one of {', '.join(PIPELINES)}, not {value!r}")
        return value
    if key == "pretrained":
        return _want(key, value, bool, prefix)
    if key == "template":
        return check_template_name(_want(key, value, str, prefix), prefix)
    if key == "template_digest":
        digest = _want(key, value, str, prefix)
        if digest and not re.fullmatch(r"[0-9a-f]{16}", digest):
            raise SpecError(f"{prefix}template_digest {digest!r} is not one the toolkit wrote")
        return digest
    if key == "params":
        return check_params(value, f"{prefix}params")
    return check_name(_want(key, value, str, prefix), prefix)


def check_template_name(name: str, prefix: str = "") -> str:
    """A project template's name: the file templates/<name>.py.j2 or templates/<name>.ipynb ('' = shipped)."""
    if not name:
        return name
    if not TEMPLATE_NAME.match(name):
        raise SpecError(f"{prefix}template {name!r} is not a template name",
                        "name the file without its extension, e.g. --template label_smoothing")
    if name in SHIPPED_TEMPLATES:
        raise SpecError(f"{prefix}template {name!r} is the name of a shipped template",
                        "leave out --template for the shipped one, or give yours another name")
    return name


def check_name(name: str, prefix: str = "") -> str:
    """A run name, which becomes its kernel's slug and title. Public push logs (2026, unconfirmed by Kaggle's
    docs) report that Kaggle refuses to create a kernel whose id starts with a digit or whose title holds
    non-ASCII characters, with the same "Notebook not found" as a missing kernel: refused here first."""
    if not name:
        return name
    if not name.isascii():
        raise SpecError(f"{prefix}name {name!r} holds non-ASCII characters, which Kaggle refuses in kernel titles",
                        "use ASCII letters, digits and hyphens")
    if not slugify(name):
        raise SpecError(f"{prefix}name {name!r} has no letters or digits to make a slug from")
    if slugify(name)[0].isdigit():
        raise SpecError(f"{prefix}name {name!r} starts with a digit, which Kaggle refuses in kernel ids",
                        "start it with a letter, e.g. 'run-" + slugify(name) + "'")
    return name


def _want(key: str, value: Any, kind: type | tuple[type, ...], prefix: str) -> Any:
    if isinstance(value, bool) and kind is not bool:
        raise SpecError(f"{prefix}{key} must be a number, not {value!r}")
    if not isinstance(value, kind):
        label = {int: "an integer", str: "text", bool: "true or false"}.get(kind, "a number")  # type: ignore[call-overload]
        raise SpecError(f"{prefix}{key} must be {label}, not {value!r}")
    return value


@lru_cache(maxsize=1)
def known_archs() -> frozenset[str]:
    lines = _ARCHS_FILE.read_text().splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


@lru_cache(maxsize=1)
def kaggle_timm_version() -> str:
    """The timm version the names come from: Kaggle image's (the file's header, made by `make archs`)."""
    match = re.search(r"timm (\S+)", _ARCHS_FILE.read_text().splitlines()[0])
    return match.group(1) if match else "?"


def check_arch(arch: str, prefix: str = "") -> str:
    """Accept a timm model name (optionally with a pretrained tag, e.g. convnext_small.fb_in22k)."""
    base = arch.split(".", 1)[0]
    if base in known_archs():
        return arch
    close = difflib.get_close_matches(base, known_archs(), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models() for names"
    # Kernels run on Kaggle's timm, so a name only a newer timm has would fail there after the GPU started.
    raise SpecError(f"{prefix}unknown architecture '{arch}' (not in timm {kaggle_timm_version()}, "
                    "the version in Kaggle's image)", hint)


def check_competition_name(name: str, prefix: str = "") -> str:
    if not _COMPETITION_RE.match(name):
        raise SpecError(f"{prefix}competition {name!r} is not a valid competition slug",
                        "use the name in the competition's URL: letters, digits and hyphens, as in "
                        "paddy-disease-classification")
    return name


def slugify(text: str) -> str:
    """Kaggle-style slug: lowercase ASCII letters and digits joined by single hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def make_slug(label: str, content_hash: str, limit: int = SLUG_MAX) -> str:
    """`<label>-<hash>`, cut to Kaggle's 50-character limit (or `limit`); the hash keeps specs apart."""
    room = limit - len(content_hash) - 1
    head = slugify(label)
    if head[:1].isdigit():  # Kaggle refuses kernel ids that start with a digit (see check_name)
        head = f"run-{head}"
    head = head[:room].strip("-") or "run"
    return f"{head}-{content_hash}"


def title_for(slug: str) -> str:
    """A kernel title that Kaggle slugifies back to exactly `slug`."""
    return slug.replace("-", " ")


def check_slug(slug: str) -> str:
    if not (SLUG_MIN <= len(slug) <= SLUG_MAX) or slugify(slug) != slug or slug[0].isdigit():
        raise SpecError(f"kernel slug {slug!r} is invalid",
                        f"use {SLUG_MIN} to {SLUG_MAX} lowercase letters, digits and single hyphens, "
                        "starting with a letter")
    return slug


RENAMED = re.compile(r"^.+-r(?P<n>\d+)$")


def renamed_slug(slug: str, current: str | None = None) -> str:
    """The next slug to push kernel `slug` under when `slug` itself is blocked: `<slug>-r2`, then -r3 after
    `current` (the one tried last), cut to Kaggle's 50 characters by shortening the label, never the hash."""
    found = RENAMED.match(current or "")
    return _suffixed(slug, int(found["n"]) + 1 if found and is_renamed(current, slug) else 2)


def is_renamed(candidate: str, slug: str) -> bool:
    """Whether `candidate` is one of the slugs renamed_slug gives `slug`."""
    found = RENAMED.match(candidate)
    return bool(found) and candidate == _suffixed(slug, int(found["n"]))


def _suffixed(slug: str, number: int) -> str:
    suffix = f"-r{number}"
    head, _, content_hash = slug.rpartition("-")
    return f"{make_slug(head, content_hash, SLUG_MAX - len(suffix))}{suffix}"
