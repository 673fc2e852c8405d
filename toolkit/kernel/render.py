"""Pure rendering: spec -> notebook and spec -> kernel-metadata, the kernel code pasted into notebooks
(runtime_source: toolkit/kernel/runtime/ and the output contract); writing the folder is separate."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from toolkit.core.errors import SpecError
from toolkit.kernel.ipynb import Node, new_cell, new_notebook
from toolkit.kernel.percent import read_cells
from toolkit.kernel.recipes import Recipe
from toolkit.specs.spec import RunSpec, check_slug, title_for

KERNEL_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = KERNEL_DIR / "templates"  # package data: ships in the wheel
RUNTIME_DIR = KERNEL_DIR / "runtime"  # the code kernels run, pasted into them (runtime_source)
# What pasting removes: relative imports between pasted modules (they share the notebook's namespace) and
# `from __future__` lines (legal only at a module's top).
RELATIVE_IMPORT = re.compile(r"^from (\.+)(\w*) import ")
FUTURE_IMPORT = re.compile(r"^from __future__ import ")
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


@dataclass(frozen=True)
class KernelOptions:
    """How a kernel is pushed: who owns it and what it may use."""

    username: str
    gpu: bool = True
    accelerator: str = "NvidiaTeslaT4"
    internet: bool = True
    private: bool = True
    dataset_sources: tuple[str, ...] = ()
    kernel_sources: tuple[str, ...] = ()
    model_sources: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


def _environment(folder: Path | None = None) -> jinja2.Environment:
    """Templates from `folder` (a user's, which may extend the shipped ones) before the shipped ones."""
    folders = [folder, TEMPLATES_DIR] if folder is not None else [TEMPLATES_DIR]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(folders), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    env.filters["py"] = repr  # parameters become Python literals, never pasted text
    env.globals["runtime"] = lambda *names: runtime_source(list(names))
    return env


def _module_file(name: str, relative_to: Path | None = None, dots: int = 1) -> Path:
    """The file of runtime module `name`: in runtime/ ('images'), or in kernel/ ('contract'); for a relative
    import, beside (one dot) or above (two dots) the importing module."""
    if relative_to is not None:
        folder = relative_to.parent
        for _ in range(dots - 1):
            folder = folder.parent
        candidates = [folder / f"{name}.py"]
    else:
        candidates = [RUNTIME_DIR / f"{name}.py", KERNEL_DIR / f"{name}.py"]
    found = next((c for c in candidates if c.is_file() and c.resolve().is_relative_to(KERNEL_DIR)), None)
    if found is None:
        raise ValueError(f"no runtime module {name!r} (looked for {', '.join(map(str, candidates))})")
    return found


def _pasteable(path: Path) -> tuple[str, list[Path]]:
    """A module's text without its relative-import and __future__ lines, and the modules those imports name."""
    kept, needs = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        relative = RELATIVE_IMPORT.match(line)
        if relative:
            if line.rstrip().endswith(("(", "\\")):
                raise ValueError(f"{path.name}:{number}: a relative import must fit on one line to be pasted")
            needs.append(_module_file(relative.group(2), path, len(relative.group(1))))
        elif re.match(r"^\s+from \.", line):
            raise ValueError(f"{path.name}:{number}: relative imports must be at the top level to be pasted")
        elif line.startswith("# %%"):
            raise ValueError(f"{path.name}:{number}: a '# %%' line would split the notebook's cell")
        elif not FUTURE_IMPORT.match(line):
            kept.append(line)
    return "\n".join(kept).strip("\n"), needs


def runtime_source(names: list[str]) -> str:
    """The pasteable source of runtime modules ('images', 'outputs', 'contract', ...): each module once, after
    the modules it imports, without the lines pasting removes and otherwise verbatim."""
    order: list[Path] = []

    def add(path: Path, seen: tuple[Path, ...]) -> None:
        if path in order:
            return
        if path in seen:
            raise ValueError(f"runtime modules import each other in a cycle: {' -> '.join(p.stem for p in seen)}")
        for need in _pasteable(path)[1]:
            add(need, seen + (path,))
        order.append(path)

    for name in names:
        add(_module_file(name), ())
    return "\n\n\n".join(f"# -- {p.relative_to(KERNEL_DIR.parent.parent).as_posix()}, pasted by the toolkit --\n"
                          f"{_pasteable(p)[0]}" for p in order) + "\n"


def percent_to_notebook(source: str) -> Node:
    """Percent-format text (`# %%` cells, `# %% [markdown]`, `# %% tags=["parameters"]`) as an nbformat 4
    notebook, its cells as jupytext reads them (kernel.percent). A cell tagged `block:NAME` (the shipped
    templates' blocks) carries {"toolkit": {"block": NAME}} instead, for naming where a failure is. Empty code
    cells are left out."""
    cells: list[Node] = []
    for cell in read_cells(source):
        blocks = [t.split(":", 1)[1] for t in cell.tags if t.startswith("block:")]
        kept = [t for t in cell.tags if not t.startswith("block:")]
        metadata = {**({"tags": kept} if kept else {}), **({"toolkit": {"block": blocks[0]}} if blocks else {})}
        if cell.cell_type != "code" or cell.source.strip() or metadata:
            cells.append(new_cell(cell.cell_type, cell.source, metadata, {c.id for c in cells}))
    return new_notebook(cells, {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}})


# A training kernel's parameters, in the order its parameters cell assigns them, with what each says.
PARAMETER_NOTES = {
    "COMPETITION": "", "ARCH": "", "EPOCHS": "", "LR": "", "ACCUM": "", "BS": "", "SEED": "", "PRECISION": "",
    "PRETRAINED": "", "VALID_PCT": "",
    "PIPELINE": "'auto' (fast on a GPU, else seed), 'fast' or 'seed'",
    "WEIGHTS": "(dataset 'owner/slug', file name) of pretrained weights attached as a dataset, or None",
    "LABELS": "the CSV at the competition root that labels the training images",
    "SPEC": "", "IDENTITY": "which run these outputs belong to; the ensemble kernel checks it",
    "IMAGE_EXTENSIONS": "what counts as an image, as the toolkit's competition check",
    "OUT_DIR": "where the outputs go, relative to the working directory",
    "PARAMS": "the run's free parameters (--param NAME=VALUE); a template reads them as params.NAME",
}


def kernel_parameters(spec: RunSpec, weights: tuple[str, str] | None, labels: dict | None, out_dir: str) -> dict:
    """The values a training kernel starts from (LABELS only for a CSV-labelled competition)."""
    from toolkit.competitions.files import IMAGE_EXTENSIONS

    values = dict(COMPETITION=spec.competition, ARCH=spec.arch, EPOCHS=spec.epochs, LR=spec.lr, ACCUM=spec.accum,
                  BS=spec.bs, SEED=spec.seed, PRECISION=spec.precision, PRETRAINED=spec.pretrained,
                  VALID_PCT=spec.valid_pct, PIPELINE=spec.pipeline, WEIGHTS=weights, LABELS=labels,
                  SPEC=spec.to_dict(), IDENTITY=run_identity(spec.slug, spec.content_hash),
                  IMAGE_EXTENSIONS=sorted(IMAGE_EXTENSIONS), OUT_DIR=out_dir, PARAMS=dict(spec.params))
    if labels is None:
        del values["LABELS"]
    return values


def parameter_lines(values: dict) -> str:
    """The parameters as Python assignments of literals (repr), never pasted text."""
    lines = []
    for name, value in values.items():
        note = PARAMETER_NOTES.get(name, "")
        lines.append(f"{name} = {value!r}" + (f"  # {note}" if note else ""))
    return "\n".join(lines)


def render_train_notebook(spec: RunSpec, weights: tuple[str, str] | None = None, out_dir: str = ".",
                          labels: dict | None = None, recipe: Recipe | None = None,
                          check_batches: int | None = None) -> Node:
    """`weights`: (dataset 'owner/slug', file name) of pretrained weights the kernel finds among its inputs.
    `labels`: {"csv", "id", "label"} when a CSV labels the training images (competition.labelling), else
    None: the class folders do. `recipe`: the user's template (kernel.recipes): a percent template, which may
    `{% extends "train.py.j2" %}` and override its blocks, or a notebook (default: train.py.j2 itself).
    `check_batches`: a check's kernel (runs/check.py), whose loaders take at most that many items a batch."""
    values = kernel_parameters(spec, weights, labels, out_dir)
    check = f"\n{runtime_source(['miniature'])}fit_batches({check_batches})  # a check's miniature\n" \
        if check_batches else ""
    if recipe is not None and recipe.notebook:
        from toolkit.kernel.notebooks import HELPERS, parameterized

        return parameterized(recipe, spec, runtime_source(list(HELPERS)), values, KERNELSPEC, check)
    env = _environment(recipe.path.parent if recipe else None)
    name = recipe.path.name if recipe else "train.py.j2"
    if recipe is not None:
        check_blocks(env, recipe)
    text = _render(env, name, recipe.shown if recipe else name, spec=spec, item=spec.item, batch=spec.batch,
                   labels=labels, params=dict(spec.params), parameters=parameter_lines(values) + check,
                   title=title_for(spec.slug))
    notebook = percent_to_notebook(text)
    if recipe is not None:
        _mark_sources(notebook, recipe)
    return notebook


def check_blocks(env: jinja2.Environment, recipe: Recipe) -> None:
    """Every block a template overrides must be one its parent has: a misspelt block would otherwise be
    rendered nowhere, leaving the parent's recipe unchanged without a word."""
    from jinja2 import nodes

    def parent_of(tree) -> str | None:
        extends = tree.find(nodes.Extends)
        return extends.template.value if extends and isinstance(extends.template, nodes.Const) else None

    def parsed(name: str, source: str):
        try:
            return env.parse(source)
        except jinja2.TemplateSyntaxError as exc:
            raise SpecError(f"{name} line {exc.lineno}: {exc.message}", "fix the template's Jinja2 syntax") from None

    tree = parsed(recipe.shown, recipe.path.read_text())
    first = parent = parent_of(tree)
    theirs: set[str] = set()
    while parent:  # the blocks of the whole chain above
        above = parsed(parent, env.loader.get_source(env, parent)[0])
        theirs |= {block.name for block in above.find_all(nodes.Block)}
        parent = parent_of(above)
    for block in (b for b in tree.body if isinstance(b, nodes.Block)) if first else ():
        if block.name not in theirs:
            close = difflib.get_close_matches(block.name, theirs, n=1)
            raise SpecError(f"{recipe.shown}: block '{block.name}' is not a block of {first}"
                            + (f" (did you mean '{close[0]}'?)" if close else ""),
                            f"its blocks: {', '.join(sorted(theirs))}")


def _render(env: jinja2.Environment, name: str, shown: str, **values) -> str:
    """The template's text, or one line naming the template and what is wrong with it."""
    try:
        return env.get_template(name).render(**values)
    except jinja2.TemplateSyntaxError as exc:
        raise SpecError(f"{shown} line {exc.lineno}: {exc.message}", "fix the template's Jinja2 syntax") from None
    except jinja2.UndefinedError as exc:
        raise SpecError(f"{shown}: {exc.message}",
                        "a template reads free parameters as params.NAME: pass --param NAME=VALUE "
                        "(or params in the sweep row)") from None


def _mark_sources(notebook: Node, recipe: Recipe) -> None:
    """Each block's cell says whose text it holds: the user's template where it overrides the block."""
    overridden = recipe.blocks()
    for cell in notebook.cells:
        block = cell.metadata.get("toolkit", {}).get("block")
        if block in overridden:
            cell.metadata["toolkit"]["template"] = recipe.shown


def run_identity(slug: str, spec_hash: str) -> dict[str, str]:
    """What a training kernel writes into its outputs to say which run they belong to."""
    return {"slug": slug, "spec_hash": spec_hash}


def render_pack_notebook(slug: str, members: dict[str, str]) -> Node:
    """A kernel that runs each member's training code (slug -> code) as its own process."""
    text = _environment().get_template("pack.py.j2").render(members=members, title=title_for(slug))
    notebook = percent_to_notebook(text)
    notebook.metadata["toolkit"] = {"gpus": len(members)}  # it trains on one per run (what a Ray job asks for)
    return notebook


def notebook_code(notebook: Node) -> str:
    """A notebook's code cells as one script."""
    return "\n\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code") + "\n"


def render_ensemble_notebook(slug: str, competition: str, members: list[dict], weights: list[float] | None,
                             predict: bool = False, recipe: Recipe | None = None) -> Node:
    """`members`: one dict per run (see ensembles.kernel.ensemble_member): where its outputs are (a kernel source,
    or the members' dataset), which run they must be and its transforms. `predict`: rebuild each member's model
    and predict on the test images present when the kernel runs (code competitions), instead of averaging the
    stored test probabilities. `recipe`: the user's template, which may `{% extends "ensemble.py.j2" %}` and
    override its blocks."""
    from toolkit.competitions.files import IMAGE_EXTENSIONS

    env = _environment(recipe.path.parent if recipe else None)
    name = recipe.path.name if recipe else "ensemble.py.j2"
    text = _render(env, name, recipe.shown if recipe else name, competition=competition, members=members,
                   weights=weights, title=title_for(slug), predict=predict, image_extensions=sorted(IMAGE_EXTENSIONS))
    notebook = percent_to_notebook(text)
    if recipe is not None:
        _mark_sources(notebook, recipe)
    return notebook


def kernel_metadata(slug: str, competition: str, options: KernelOptions) -> dict:
    """kernel-metadata.json as `kaggle kernels push` reads it; every flag written explicitly."""
    check_slug(slug)
    meta = {
        "id": f"{options.username}/{slug}",
        "title": title_for(slug),
        "code_file": f"{slug}.ipynb",
        "language": "python",
        "kernel_type": "notebook",
        "is_private": options.private,
        "enable_gpu": options.gpu,
        "enable_tpu": False,
        "enable_internet": options.internet,
        "keywords": [],
        "competition_sources": [competition],
        "dataset_sources": list(options.dataset_sources),
        "kernel_sources": list(options.kernel_sources),
        "model_sources": list(options.model_sources),
    }
    if options.gpu:
        meta["machine_shape"] = options.accelerator
    return meta
