"""The percent-format reader (toolkit/kernel/percent.py) reads as jupytext does: every shipped template and
example renders to the notebook jupytext made of it, and so do generated texts full of the format's corners
(markers with options, headers, magics, strings, fences, blank lines). jupytext stays installed (the kaggle
client depends on it), so it is the reference here."""

from __future__ import annotations

import random
import warnings

import pytest

from toolkit.core.errors import SpecError
from toolkit.kernel import recipes, render
from toolkit.kernel.percent import read_cells
from toolkit.kernel.render import (KERNELSPEC, notebook_code, percent_to_notebook, render_ensemble_notebook,
                                   render_pack_notebook, render_train_notebook, runtime_source)
from toolkit.specs.spec import build_spec

jupytext = pytest.importorskip("jupytext")

SPEC = build_spec({"arch": "convnext_small_in22k", "competition": "digits-demo", "epochs": 3, "lr": 0.005,
                   "bs": 32, "item": "Resize((640,480))", "batch": "aug_transforms(size=(288,224), min_scale=0.75)",
                   "name": "x'); import os; ('\"\"\"\n# %% ", "params": {"eps": 0.2, "alpha": 0.3}})
MEMBERS = [{"name": n, "source": f"alice/{n}", "version": 1, "tta": "tta.pkl", "item": "Resize(16)", "batch": None,
            "identity": {"slug": n, "spec_hash": n[-8:]}, "sha256": "0" * 64}
           for n in ("resnet18-aaaaaaaa", "convnext-small-bbbbbbbb")]


def jupytext_notebook(source: str):
    """percent_to_notebook as it was, on jupytext."""
    notebook = jupytext.reads(source, fmt="py:percent")
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        blocks = [t.split(":", 1)[1] for t in tags if t.startswith("block:")]
        cell.metadata = {key: value for key, value in cell.metadata.items() if key == "tags"}
        kept = [t for t in tags if not t.startswith("block:")]
        if kept:
            cell.metadata["tags"] = kept
        else:
            cell.metadata.pop("tags", None)
        if blocks:
            cell.metadata["toolkit"] = {"block": blocks[0]}
    notebook.cells = [c for c in notebook.cells if c.cell_type != "code" or c.source.strip() or c.metadata]
    notebook.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    return notebook


def without_ids(notebook) -> dict:
    return {**notebook, "cells": [{k: v for k, v in cell.items() if k != "id"} for cell in notebook["cells"]]}


def rendered_texts(tmp_path) -> dict[str, str]:
    """The percent text of every shipped template and example, as rendering hands it to percent_to_notebook."""
    texts: dict[str, str] = {}
    label = ""

    def capture(source):
        texts[label] = source
        return percent_to_notebook(source)

    example = {name: recipes.find(tmp_path, name) for name in recipes.available(recipes.EXAMPLES_DIR)}
    makers = {
        "train": lambda: render_train_notebook(SPEC),
        "train-csv": lambda: render_train_notebook(SPEC, labels={"csv": "train.csv", "id": "id", "label": "y\n# %%"}),
        "train-weights": lambda: render_train_notebook(SPEC, weights=("alice/w", "w.pth"), out_dir="sub"),
        "train-check": lambda: render_train_notebook(SPEC, check_batches=2),
        "pack": lambda: render_pack_notebook("pack-2-abcdef12", {"a": notebook_code(render_train_notebook(SPEC))}),
        "ensemble": lambda: render_ensemble_notebook("ensemble-12345678", "digits-demo", MEMBERS, [1.0, 2.0]),
        "ensemble-predict": lambda: render_ensemble_notebook("ensemble-12345678", "digits-demo", MEMBERS, None, True),
        "label_smoothing": lambda: render_train_notebook(SPEC, recipe=example["label_smoothing"]),
        "mixup": lambda: render_train_notebook(SPEC, recipe=example["mixup"]),
        "inference_server": lambda: render_ensemble_notebook("ensemble-12345678", "digits-demo", MEMBERS, None, True,
                                                             recipe=example["inference_server"]),
    }
    assert set(example) <= set(makers), "a new example needs a render here"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(render, "percent_to_notebook", capture)
        for label, make in makers.items():
            make()
    names = [p.stem for p in render.RUNTIME_DIR.glob("*.py") if p.stem != "__init__"]
    texts["runtime"] = "# %%\n" + runtime_source(names)
    return texts


def test_every_shipped_template_and_example_reads_as_jupytext_reads_it(tmp_path):
    texts = rendered_texts(tmp_path)
    assert len(texts) == 11
    for label, text in texts.items():
        ours = percent_to_notebook(text)
        assert without_ids(ours) == without_ids(jupytext_notebook(text)), label
        assert len({cell.id for cell in ours.cells}) == len(ours.cells)


# Lines a generated text is made of: markers with every kind of option, and content that jupytext treats
# specially (commented magics, strings across lines, fences, header lines, escaped markers, blank lines).
MARKERS = ["# %%", "#%%", "# %% [markdown]", "# %% [raw]", "# %% [md]", '# %% tags=["parameters"]',
           '# %% tags=["block:fit"]', '# %% [markdown] tags=["a", "b"]', "# %% Title here", '# %% {"tags": ["x"]}',
           "    # %%", "# <codecell>", "# In[3]:", "# %%%", "# %% tags=['single']", '# %% key=1 tags=["k"]',
           "# %% [markdown] Some title", "# %%  ", "# %% .cls", '# %% tags=["p"] other', '# %% cell_type="markdown"',
           "# %% tags=[a]", '# %% {"tags": ["x"], "o": 1}', '# %% [markdown] {"tags": ["m"]}', '# %% t [raw] k="v w"',
           '# %% [markdown] tags=["a"] x="="']
LINES = ["x = 1", "", "", "", "   ", "# comment", "# # heading", "#", "# !pip install x", "!pip list", "# %time x",
         "%matplotlib inline", "# %%bash", "# ls files", "# what?", "s = '''", "'''", 's = """x', '"""',
         'text = "# %%"', "# ```", "```", "# ~~~", "~~~", "# ```python", "def f():", "    return 1", "    # %% inside",
         "# # +", "# +", "x = 1 \\", "# cd dir \\", "a = !ls", "# a = %time f()", "print('it''s')", "# ---",
         "# jupyter:", "#   kernelspec:", "#     name: python3", "# title: hi", "#!/usr/bin/env python",
         "# -*- coding: utf-8 -*-", "r'''", "'''r", '# """', "x = 'a # b'", "y = \"it's\"", "z = '\"\"\"'", "# echo hi",
         "# echo=1", "# rm -rf x", "# x?", "x?", "?x", "# mkdir d", "#   indented comment", "\t# tab comment",
         "## double", "# %pip install y", "# %%capture", "    # !ls", "f'''", "b = '''x'''", "# ## Heading",
         "# # Title?", "# - item", "#  two spaces",
         "s = 'it\\'s'", 'q = "a\\"b"  # c', "t = \'\'\'a\'\'\' + \"\"\"", "x = ''"]
HEADERS = [["# ---", "# jupyter:", "#   kernelspec:", "#     name: python3", "#     display_name: Python 3", "# ---"],
           ["# ---", "# title: x", "# ---", ""], ["#!/bin/py", "# ---", "# a: 1", "# ---"],
           ["# -*- coding: utf-8 -*-"], ["#", "# ---", "# ---"], ["# ---"]]


def generated(rng: random.Random) -> str:
    lines = [rng.choice(MARKERS) if rng.random() < 0.25 else rng.choice(LINES) for _ in range(rng.randint(1, 20))]
    if rng.random() < 0.3:
        lines = rng.choice(HEADERS) + lines
    return "\n".join(lines) + rng.choice(["", "\n", "\n\n"])


def test_generated_texts_read_as_jupytext_reads_them():
    rng, compared = random.Random(20260501), 0
    for _ in range(1500):
        text = generated(rng)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = jupytext.reads(text, fmt="py:percent").cells
        except Exception:  # noqa: BLE001 - texts jupytext itself cannot read (a broken header) are not compared
            continue
        assert [tuple(c) for c in read_cells(text)] == \
            [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in theirs], text
        compared += 1
    assert compared > 1400


def test_the_docstrings_example():
    cells = read_cells('# %% [markdown]\n# # Title\n#\n# text\n\n# %% tags=["parameters"]\nA = 1\n\n\n'
                       '# %% tags=["block:fit"]\nfit()\n')
    assert cells == [("markdown", "# Title\n\ntext", []), ("code", "A = 1", ["parameters"]),
                     ("code", "fit()", ["block:fit"])]


def test_a_marker_inside_a_string_starts_no_cell():
    assert [c.source for c in read_cells('# %%\ns = """\n# %%\n"""\n# %%\nx = 1\n')] == ['s = """\n# %%\n"""', "x = 1"]


@pytest.mark.parametrize("marker", ['# %% language="R"', '# %% active="ipynb"', '# %% tags=["active-py"]',
                                    '# %% {"run_control": {"frozen": true}}', '# %% cell_type="md"',
                                    '# %% tags="parameters"'])
def test_options_that_would_change_a_cells_code_are_refused_in_one_line(marker):
    with pytest.raises(SpecError, match="template line"):
        read_cells(f"{marker}\nx = 1\n")
