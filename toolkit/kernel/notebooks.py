"""A user's own notebook as a training kernel, in papermill's convention: the notebook keeps a cell tagged
`parameters` that declares its parameters (their defaults, for running it by hand), and the run's values go
into a cell tagged `injected-parameters` right after it, which replaces one left from an earlier render
(papermill's parameterize_notebook does the same). That cell assigns only the names the parameters cell
declares (a run field under any of its names, kernel.parameters.FIELD_NAMES, and free parameters by their own
names), and defines the toolkit's kernel helpers from the runtime modules: find_input, save_learner (every output
the toolkit reads), fastkaggle's setup_comp and iskaggle as they mean on Kaggle today, the run's pretrained
weights for the notebook's own learner, and an epoch log on every learner."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from toolkit.core.errors import SpecError
from toolkit.kernel.parameters import FIELD_NAMES, TRANSFORM_FIELDS, Declared, notebook_declared, percent_declared
from toolkit.kernel.recipes import Recipe
from toolkit.specs.spec import RunSpec
from toolkit.specs.transforms import transform_names

if TYPE_CHECKING:  # nbformat (and jsonschema) only where a user's .ipynb template is read
    import nbformat

PARAMETERS, INJECTED = "parameters", "injected-parameters"
# nbformat 4's keys: what Jupyter reads of a notebook and of each kind of cell.
NOTEBOOK_KEYS = {"cells", "metadata", "nbformat", "nbformat_minor"}
CELL_KEYS = {"code": {"id", "cell_type", "metadata", "source", "outputs", "execution_count"},
             "markdown": {"id", "cell_type", "metadata", "source", "attachments"},
             "raw": {"id", "cell_type", "metadata", "source", "attachments"}}
# What a user's notebook gets besides its parameters: the input resolver, fastkaggle's first cells, the
# pretrained weights, and the outputs writer (save_learner(learn, test_files): tta.pkl, metrics.json, models).
HELPERS = ("inputs", "competition_setup", "pretrained", "images", "learners", "epochs", "outputs")


def declared(recipe: Recipe) -> Declared:
    """What a template takes from a run: a notebook's parameters cell, or what a percent template reads."""
    if not recipe.notebook:
        return percent_declared(recipe.path)
    notebook = _read(recipe)
    return notebook_declared(notebook.cells[_parameters_cell(notebook, recipe)].source, recipe.shown)


def assignments(spec: RunSpec, taken: Declared) -> str:
    """The run's values for the names the notebook declares: each run field it declares and the run sets (under
    every name it declares it by), and each free parameter (by name, or all in PARAMS when it declares that)."""
    lines, transforms = [], []
    for field_name in FIELD_NAMES:
        value = getattr(spec, field_name)
        if value is None:  # the notebook keeps its own default
            continue
        for name in taken.names_of(field_name):
            if field_name in TRANSFORM_FIELDS:
                transforms.append(value)
                lines.append(f"{name} = {value or 'None'}")
            else:
                lines.append(f"{name} = {value!r}")
    lines += [f"{name} = {value!r}" for name, value in spec.params.items() if name in taken.params]
    if taken.any_param:
        lines.append(f"PARAMS = {dict(spec.params)!r}")
    used = sorted({n for text in transforms for n in transform_names(text)})
    return "\n".join(([f"from fastai.vision.all import {', '.join(used)}  # for this run's transforms"] if used else [])
                     + lines)


def parameterized(recipe: Recipe, spec: RunSpec, helpers: str, context: dict, kernelspec: dict,
                  extra: str = "") -> nbformat.NotebookNode:
    """The recipe's notebook with the run's values and the kernel `helpers` (pasted runtime modules) injected
    after its parameters cell. `context`: the run's weights file (WEIGHTS), identity and outputs folder, which
    the helpers take; `extra`: code a check adds."""
    import nbformat

    notebook = _read(recipe)
    for cell in notebook.cells:  # whose code it is, for naming where a failure is
        cell.metadata["toolkit"] = {"template": recipe.shown}
    index = _parameters_cell(notebook, recipe)
    taken = notebook_declared(notebook.cells[index].source, recipe.shown)
    weights = f"input_file('datasets', *{context['WEIGHTS']!r})" if context["WEIGHTS"] else "None"
    injected = nbformat.v4.new_code_cell(
        "# Injected by the toolkit: this run's values for the names the parameters cell declares, then its kernel\n"
        "# helpers (toolkit/kernel/runtime/).\n" + assignments(spec, taken) + "\n\n" + helpers
        + "\n# Every learner this notebook makes logs its epochs (metrics.json and the toolkit's progress lines);\n"
        "# save_learner(learn, test_files) writes every output for this run; a pretrained timm model gets the\n"
        "# weights attached to the run, or starts from scratch where the run does.\n"
        "import functools as _functools\n"
        "from fastai.learner import defaults as _defaults\n"
        "_defaults.callbacks = [*_defaults.callbacks, EpochLog]\n"
        f"use_pretrained({spec.arch!r}, {weights}, pretrained={spec.pretrained!r})\n"
        f"SPEC = {context['SPEC']!r}  # the run (a lost registry is rebuilt from it)\n"
        f"IDENTITY = {context['IDENTITY']!r}\n"
        f"save_learner = _functools.partial(save_learner, out_dir={context['OUT_DIR']!r}, spec=SPEC, identity=IDENTITY)\n"
        + extra)
    injected.metadata["tags"] = [INJECTED]
    injected.metadata["toolkit"] = {"template": recipe.shown, "injected": True}
    old = _tagged(notebook, INJECTED)
    if old is not None:
        notebook.cells[old] = injected
    else:
        notebook.cells.insert(index + 1, injected)
    notebook.metadata["kernelspec"] = dict(kernelspec)  # Kaggle's papermill fails without one (kaggle-api#689)
    notebook.metadata.setdefault("language_info", {"name": "python"})
    return notebook


def _parameters_cell(notebook: nbformat.NotebookNode, recipe: Recipe) -> int:
    index = _tagged(notebook, PARAMETERS)
    if index is None:
        raise SpecError(f"{recipe.shown} has no cell tagged '{PARAMETERS}'",
                        "tag the cell that sets your defaults: in Jupyter, View > Cell Toolbar > Tags, add "
                        "'parameters' (papermill's convention); the run's values go right after it")
    return index


def _read(recipe: Recipe) -> nbformat.NotebookNode:
    """The notebook as Jupyter opens it: keys other tools add (nbdev's `path_`, `idx_`) dropped, cell ids added
    where an older Jupyter saved none."""
    import nbformat
    import nbformat.validator

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # missing cell ids are added below
            notebook = nbformat.read(recipe.path, as_version=4)
        for key in set(notebook) - NOTEBOOK_KEYS:
            del notebook[key]
        for cell in notebook.get("cells", []):
            for key in set(cell) - CELL_KEYS.get(cell.get("cell_type"), set(cell)):
                del cell[key]
        notebook = nbformat.validator.normalize(notebook)[1]
        nbformat.validate(notebook)
    except (OSError, ValueError, nbformat.ValidationError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(f"{recipe.shown} is not a readable notebook: {first[:200]}",
                        "save it again from Jupyter, or open it to see what is wrong") from None
    for cell in notebook.cells:
        cell.metadata.pop("toolkit", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None  # a template's old outputs are not this run's
    return notebook


def _tagged(notebook: nbformat.NotebookNode, tag: str) -> int | None:
    return next((i for i, c in enumerate(notebook.cells) if tag in c.get("metadata", {}).get("tags", [])), None)
