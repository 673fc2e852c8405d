"""Notebooks as plain data (toolkit/kernel/ipynb.py): what rendering writes is the file nbformat would write,
nbformat reads and validates it, the quick check never passes what nbformat's schema refuses, and rendering
and writing a kernel folder import neither nbformat, jsonschema nor jupytext."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import nbformat
import pytest

from toolkit.kernel.folders import write_kernel_folder
from toolkit.kernel.ipynb import Node, new_cell, new_notebook, notebook_text, rendered_shape
from toolkit.kernel.render import KernelOptions, kernel_metadata, render_ensemble_notebook, render_train_notebook
from toolkit.specs.spec import build_spec

SPEC = build_spec({"arch": "resnet18", "competition": "digits-demo"})
LABELS = {"csv": "étiquettes.csv", "id": "image", "label": "classe ✓"}  # text beyond ASCII
MEMBERS = [{"name": "resnet18-aaaaaaaa", "source": "alice/resnet18-aaaaaaaa", "version": 1, "tta": "tta.pkl",
            "identity": {"slug": "resnet18-aaaaaaaa", "spec_hash": "aaaaaaaa"}, "sha256": "0" * 64}]


def rendered() -> list:
    return [render_train_notebook(SPEC), render_train_notebook(SPEC, labels=LABELS),
            render_ensemble_notebook("ensemble-12345678", "digits-demo", MEMBERS, None)]


def test_rendered_notebooks_are_written_as_nbformat_writes_them():
    for notebook in rendered():
        assert rendered_shape(notebook)
        text = notebook_text(notebook)
        assert text == nbformat.writes(nbformat.from_dict(copy.deepcopy(notebook))) + "\n"
        read = nbformat.reads(text, as_version=4)
        nbformat.validate(read)
        assert [(c.cell_type, c.source, c.metadata) for c in read.cells] == \
            [(c.cell_type, c.source, c.metadata) for c in notebook.cells]


def test_a_written_kernel_folder_reads_back_with_nbformat(tmp_path):
    meta = kernel_metadata(SPEC.slug, "digits-demo", KernelOptions(username="alice"))
    folder = write_kernel_folder(tmp_path / SPEC.slug, render_train_notebook(SPEC, labels=LABELS), meta)
    text = (folder / f"{SPEC.slug}.ipynb").read_text(encoding="utf-8")
    assert text.endswith("}\n") and "classe ✓" in text  # a final newline; text as it is, not escaped
    nbformat.validate(nbformat.read(folder / f"{SPEC.slug}.ipynb", as_version=4))


def test_notebooks_are_nodes_like_nbformats():
    notebook = new_notebook([new_cell("markdown", "# Hi"), new_cell("code", "x = 1", {"tags": ["parameters"]})],
                            {"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    assert notebook.cells[1].metadata.tags == ["parameters"] and notebook.metadata.kernelspec.name == "python3"
    assert notebook.cells[1].outputs == [] and notebook.cells[1].execution_count is None
    assert "outputs" not in notebook.cells[0] and isinstance(copy.deepcopy(notebook), Node)
    with pytest.raises(AttributeError):
        notebook.missing  # noqa: B018
    nbformat.validate(notebook)


def mutations() -> list:
    """Notebooks one change away from a rendered one, valid or not."""
    base = render_train_notebook(SPEC)

    def changed(change):
        notebook = copy.deepcopy(base)
        change(notebook)
        return notebook

    first = lambda nb: nb.cells[1]  # noqa: E731 - the parameters cell
    return [changed(c) for c in (
        lambda nb: first(nb).metadata.update(tags=["a,b"]),
        lambda nb: first(nb).metadata.update(tags=["a", "a"]),
        lambda nb: first(nb).metadata.update(tags=[""]),
        lambda nb: first(nb).metadata.update(tags="parameters"),
        lambda nb: first(nb).metadata.update(other={"x": 1}),
        lambda nb: first(nb).metadata.update(toolkit={"block": 3}),
        lambda nb: first(nb).update(id="bad id"),
        lambda nb: first(nb).update(id=nb.cells[0].id),
        lambda nb: first(nb).update(id="x" * 65),
        lambda nb: first(nb).update(outputs=[{"output_type": "stream", "name": "stdout", "text": "hi"}]),
        lambda nb: first(nb).update(execution_count=1),
        lambda nb: first(nb).update(source=["a = 1\n", "b = 2"]),
        lambda nb: first(nb).update(source=3),
        lambda nb: first(nb).pop("outputs"),
        lambda nb: first(nb).update(cell_type="nonsense"),
        lambda nb: nb.cells[0].update(attachments={}),
        lambda nb: nb.cells.append({"cell_type": "nonsense"}),
        lambda nb: nb.metadata.update(kernelspec={"name": "python3"}),
        lambda nb: nb.metadata.update(kernelspec={}),
        lambda nb: nb.metadata.update(language_info={"name": "python", "version": "3.12"}),
        lambda nb: nb.metadata.update(language_info={}),
        lambda nb: nb.metadata.pop("kernelspec"),
        lambda nb: nb.update(nbformat_minor=4),
        lambda nb: nb.update(extra=1),
    )]


def test_the_quick_check_never_passes_what_nbformat_refuses():
    for notebook in mutations():
        try:
            nbformat.validate(copy.deepcopy(notebook))
        except nbformat.ValidationError:
            assert not rendered_shape(notebook), notebook
            with pytest.raises(nbformat.ValidationError):
                notebook_text(notebook)  # the full validation says what is wrong
        else:  # valid, by either check: written as nbformat writes it
            assert notebook_text(notebook) == nbformat.writes(nbformat.from_dict(copy.deepcopy(notebook))) + "\n"


def test_rendering_and_writing_a_kernel_folder_imports_no_nbformat_jsonschema_or_jupytext(tmp_path):
    code = (f"import sys\nfrom pathlib import Path\n"
            f"from toolkit.kernel.folders import write_kernel_folder\n"
            f"from toolkit.kernel.render import KernelOptions, kernel_metadata, render_train_notebook\n"
            f"from toolkit.specs.spec import build_spec\n"
            f"spec = build_spec({{'arch': 'resnet18', 'competition': 'digits-demo'}})\n"
            f"meta = kernel_metadata(spec.slug, 'digits-demo', KernelOptions(username='alice'))\n"
            f"write_kernel_folder(Path({str(tmp_path)!r}) / spec.slug, render_train_notebook(spec), meta)\n"
            f"print(sorted(m for m in ('nbformat', 'jsonschema', 'jupytext') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.replace("'", '"')) == []
    assert len(list(tmp_path.iterdir())) == 1
