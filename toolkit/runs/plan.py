"""kpush's first step: turn run specs (flags, or a sweep file's rows) into rendered kernel folders. Nothing is
stored or pushed here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.competitions.labels import kernel_labelling
from toolkit.competitions.layout import find_competition
from toolkit.core.errors import CompetitionError, SpecError
from toolkit.kernel import recipes
from toolkit.kernel.datasets import WEIGHTS_LICENSE, dataset_metadata, weights_slug, write_dataset
from toolkit.kernel.folders import write_kernel_folder
from toolkit.kernel.notebooks import declared
from toolkit.kernel.parameters import TRANSFORM_FIELDS, Declared, Expression
from toolkit.kernel.recipes import Recipe
from toolkit.kernel.render import KernelOptions, kernel_metadata, render_train_notebook
from toolkit.project import Project
from toolkit.specs.params import check_params
from toolkit.specs.spec import FIELDS, TEMPLATE_OWN, RunSpec, build_spec, check_field, check_template_name
from toolkit.specs.sweep_file import check_unique, load_sweep

# Run fields every template takes whether it declares them or not: which competition (its data), the run's
# name, the template itself, and pretrained (a notebook's own learner gets the run's weights, or none).
ALWAYS_TAKEN = {"competition", "name", "template", "template_digest", "pretrained", "params"}


@dataclass(frozen=True)
class Planned:
    """A rendered run: its spec, kernel folder, and anything the user should be told about it."""

    spec: RunSpec
    folder: Path
    notebook: Any
    metadata: dict
    notice: str = ""
    weights: tuple[str, str] | None = None  # (dataset ref, file name) of the pretrained weights
    labels: dict | None = None  # the labels CSV and its columns, or None for class folders
    recipe: Recipe | None = None  # the user's template it was rendered from (None: the shipped one)


def plan_train(project: Project, archs: list[str], params: dict[str, Any],
               pretrained: bool | None = None) -> list[Planned]:
    """Validate every run and render its kernel folder; nothing is stored or pushed yet."""
    config = project.config
    if not archs:
        raise SpecError("no architecture given", "pass --arch NAME (repeatable)")
    flags = {k: v for k, v in params.items() if v is not None}
    defaults = {**config.train, **flags}
    if isinstance(config.train.get("params"), dict) and params.get("params"):  # --param adds to [train]'s
        defaults["params"] = {**config.train["params"], **params["params"]}
    rows = [({**defaults, "arch": arch, "competition": params.get("competition") or config.competition}, "")
            for arch in archs]
    origin = {**{k: "toolkit.toml's [train]" for k in config.train}, **{k: f"--{k}" for k in flags}, "arch": "--arch"}
    return plan_runs(project, rows, pretrained, origin)


def plan_runs(project: Project, rows: list[tuple[dict[str, Any], str]],
              pretrained: bool | None = None, origin: dict[str, str] | None = None) -> list[Planned]:
    """Render one kernel per (raw values, where) row; `where` names the row in errors (e.g. a sweep line),
    `origin` where each value came from (a flag, toolkit.toml)."""
    config = project.config
    specs = [build_spec(template_values(project, values, where, origin or {}), where) for values, where in rows]
    names = list(dict.fromkeys(s.competition for s in specs))
    here = project.backend_type.competitions_root(config)
    for name in names if here is not None else ():
        find_competition(here, name, config.labels_given, config.image_record(name))
    # How each competition labels its images. On the Kaggle backend its folder may exist only on Kaggle:
    # then the configured columns are used when given, else class folders (see kernel_labelling).
    labels = {name: kernel_labelling(config.resolve(config.competitions_root) / name,
                                   config.labels_given) for name in names}
    planned = [_prepare(project, spec, pretrained, labels[spec.competition]) for spec in specs]
    for item in planned:  # written only once every run is known to be valid
        write_kernel_folder(item.folder, item.notebook, item.metadata)
    write_weights_datasets(project, planned)
    return planned


def template_values(project: Project, values: dict[str, Any], where: str, origin: dict[str, str]) -> dict:
    """A row's values for a run of the user's own template: every value must go to a name the template declares
    (else one line naming what it does declare); the fields it declares but the row leaves out take the
    template's own defaults, the fields it does not declare are its own (None)."""
    if not values.get("template"):
        return values
    recipe = recipes.find(project.config.templates_dir, check_template_name(values["template"]))
    taken = declared(recipe)
    prefix = f"{where}: " if where else ""
    for key in values.keys() - ALWAYS_TAKEN:
        if key in FIELDS and key not in taken.fields():
            raise SpecError(f"{prefix}{recipe.shown} does not declare {key}, which {origin.get(key, 'the run')} "
                            f"sets (it declares {taken.shown()})", f"add {key} to its parameters cell, or leave it out")
    for name in check_params(values.get("params") or {}, f"{prefix}params"):
        if not taken.takes_param(name):
            raise SpecError(f"{prefix}{recipe.shown} does not read the parameter {name} (--param {name}=...; it "
                            f"declares {taken.shown()})", f"declare {name} in its parameters cell, or leave it out")
    if taken.every_field:
        return values
    return {**{key: _template_default(taken, key) for key in TEMPLATE_OWN}, **values}


def _template_default(taken: Declared, key: str) -> Any:
    """A template's own default for a run field, as the run shows it (None: not declared, or not one to show)."""
    value = taken.default(key)
    if isinstance(value, Expression):
        value = value.text if key in TRANSFORM_FIELDS else None
    try:
        return None if value is None else check_field(key, value)
    except SpecError:
        return None


def _prepare(project: Project, spec: RunSpec, pretrained: bool | None, labels: dict | None = None) -> Planned:
    wanted = spec.pretrained if pretrained is None else pretrained
    weights, notice = _weights(project, spec, pretrained) if wanted else (None, "")
    if notice:  # no weights on this machine: it trains from scratch
        wanted = False
    recipe = recipes.find(project.config.templates_dir, spec.template) if spec.template else None
    spec = build_spec({**spec.to_dict(), "pretrained": bool(wanted),
                       "template_digest": recipe.digest if recipe else ""})
    options = train_options(project, (weights[0],) if weights else ())
    return Planned(spec, project.config.kernels_dir / spec.slug,
                   render_train_notebook(spec, weights, labels=labels, recipe=recipe),
                   kernel_metadata(spec.slug, spec.competition, options), notice, weights, labels, recipe)


def _weights(project: Project, spec: RunSpec, pretrained: bool | None) -> tuple[tuple[str, str] | None, str]:
    """(dataset ref, file) of the pretrained weights a run attaches, or None where the kernel downloads them;
    and a notice when there are none, so the run trains from scratch. `pretrained`: the user insisted. A backend
    that uploads datasets (Kaggle, for a kernel without internet) attaches this machine's file as a dataset of
    the arch's own (kernel.datasets.weights_slug); there, no file is an error: such a kernel has no other way."""
    local = project.backend_type.weights_file(project.config, spec.arch)
    uploads = project.backend_type.uploads_datasets
    if local is None:  # timm downloads them in the kernel
        if not project.config.internet:
            raise SpecError(f"{spec.arch}: pretrained weights need internet in the kernel",
                            "drop --no-internet, or train from scratch with --scratch")
        return None, ""
    if local.is_file():
        dataset = weights_slug(spec.arch) if uploads else local.parent.name
        return (f"{project.username}/{dataset}", local.name), ""
    if uploads:
        raise SpecError(f"no pretrained weights for {spec.arch} on this machine (looked for {local}); a kernel "
                        "without internet gets them only from there, uploaded as a private dataset",
                        "put timm's state dict there (docs/kaggle.md, Pretrained weights for offline kernels), "
                        "train from scratch with --scratch, or drop --no-internet")
    if pretrained:
        raise SpecError(f"no pretrained weights for {spec.arch} on this machine (looked for {local})",
                        "drop --pretrained to train from scratch, or put a timm state dict there")
    return None, f"{spec.arch}: no local pretrained weights, training from scratch"


def write_weights_datasets(project: Project, planned: list[Planned]) -> None:
    """Where the backend uploads datasets, each arch's weights laid out as the dataset its runs attach (a link to
    this machine's file and dataset-metadata.json), uploaded before they are pushed (runs.datasets)."""
    if not project.backend_type.uploads_datasets:
        return
    root = project.config.resolve(project.config.datasets_root)
    for ref, name in dict.fromkeys(item.weights for item in planned if item.weights):
        arch, slug = Path(name).stem, ref.split("/")[1]
        local = project.backend_type.weights_file(project.config, arch)
        about = f"timm's pretrained weights for {arch} ({name}: a state dict), uploaded by kaggle-kernel-toolkit."
        write_dataset(root / slug, dataset_metadata(project.username, slug, WEIGHTS_LICENSE, about), {name: local})


def train_options(project: Project, dataset_sources: tuple[str, ...] = ()) -> KernelOptions:
    """How a training (or pack) kernel is pushed, from the configuration."""
    config = project.config
    return KernelOptions(username=project.username, gpu=True, accelerator=config.accelerator,
                         internet=config.internet, private=config.private, dataset_sources=dataset_sources)


def plan_sweep(project: Project, path: Path, competition: str | None = None, pretrained: bool | None = None):
    """Load, validate and render every run of a sweep file (nothing stored or pushed yet)."""
    base = {**project.config.train, "competition": competition or project.config.competition}
    sweep = load_sweep(path, base)
    check_unique([build_spec(r.values, r.where) for r in sweep.rows], sweep.rows)
    return sweep, plan_runs(project, [(r.values, r.where) for r in sweep.rows], pretrained)


def need_competitions(project) -> None:
    """In a folder with no competition at all, say how to get one here (not a Makefile target)."""
    root = project.backend_type.competitions_root(project.config)
    if root is not None and not (root.is_dir() and any(p.is_dir() for p in root.iterdir())):
        raise CompetitionError(f"no competitions in {root}", "`python -m toolkit.demo` builds the demo competition "
                           "there; or put a competition folder in it, as docs/competitions.md shows")
