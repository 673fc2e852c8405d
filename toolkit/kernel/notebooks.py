"""A user's own notebook as a training kernel, in papermill's convention: the notebook keeps a cell tagged
`parameters` (its defaults, for running it by hand), and the run's values go into a cell tagged
`injected-parameters` right after it, which replaces one left from an earlier render (papermill's
parameterize_notebook does the same). That cell also defines the toolkit's kernel helpers (find_input,
save_learner, ...) from the runtime modules, so the notebook writes every output the toolkit reads."""

from __future__ import annotations

import nbformat

from toolkit.core.errors import SpecError
from toolkit.kernel.recipes import Recipe

PARAMETERS, INJECTED = "parameters", "injected-parameters"
# What a user's notebook gets besides its parameters: the input resolver and the outputs writer, whose
# save_learner(learn, test_files) writes tta.pkl, metrics.json and the model files through the contract.
HELPERS = ("inputs", "images", "learners", "epochs", "outputs")


def parameterized(recipe: Recipe, parameters: str, helpers: str, kernelspec: dict) -> nbformat.NotebookNode:
    """The recipe's notebook with the run's `parameters` (assignments) and the kernel `helpers` (pasted runtime
    modules) injected after its parameters cell."""
    notebook = _read(recipe)
    index = _tagged(notebook, PARAMETERS)
    if index is None:
        raise SpecError(f"{recipe.shown} has no cell tagged '{PARAMETERS}'",
                        "tag the cell that sets your defaults: in Jupyter, View > Cell Toolbar > Tags, add "
                        "'parameters' (papermill's convention); the run's values go right after it")
    for number, cell in enumerate(notebook.cells):  # where a failure is, in the user's own numbering
        cell.metadata["toolkit"] = {"template": recipe.shown, "cell": number}
    injected = nbformat.v4.new_code_cell(
        "# Injected by the toolkit: this run's values, then its kernel helpers (toolkit/kernel/runtime/).\n"
        + parameters + "\n\n" + helpers
        + "\n# Every learner this notebook makes logs its epochs (metrics.json and the toolkit's progress lines), and\n"
        "# save_learner(learn, test_files) writes every output for this run.\n"
        "import functools as _functools\n"
        "from fastai.learner import defaults as _defaults\n"
        "_defaults.callbacks = [*_defaults.callbacks, EpochLog]\n"
        "save_learner = _functools.partial(save_learner, out_dir=OUT_DIR, spec=SPEC, identity=IDENTITY)\n")
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


def _read(recipe: Recipe) -> nbformat.NotebookNode:
    try:
        notebook = nbformat.read(recipe.path, as_version=4)
        nbformat.validate(notebook)
    except (OSError, ValueError, nbformat.ValidationError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(f"{recipe.shown} is not a readable notebook: {first[:200]}",
                        "save it again from Jupyter, or open it to see what is wrong") from None
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None  # a template's old outputs are not this run's
    return notebook


def _tagged(notebook: nbformat.NotebookNode, tag: str) -> int | None:
    return next((i for i, c in enumerate(notebook.cells) if tag in c.get("metadata", {}).get("tags", [])), None)
