"""Notebook and kernel-metadata rendering, and writing the kernel folder (toolkit/render.py)."""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

import nbformat
import pytest

from toolkit.core.errors import EnsembleError, SpecError
from toolkit.kernel.folders import write_kernel_folder
from toolkit.kernel.recipes import Recipe
from toolkit.kernel.render import (KernelOptions, kernel_metadata, percent_to_notebook, render_ensemble_notebook,
                                   render_train_notebook, runtime_source)
from toolkit.specs.spec import build_spec, slugify

SPEC = build_spec({"arch": "convnext_small_in22k", "competition": "digits-demo", "epochs": 3, "lr": 0.005,
                   "bs": 32, "accum": 2, "seed": 7, "precision": "bf16", "pretrained": False, "valid_pct": 0.25,
                   "item": "Resize((640,480))", "batch": "aug_transforms(size=(288,224), min_scale=0.75)",
                   "name": "paddy run"})


def code_cells(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def python_only(source: str) -> str:
    """A cell without its shell (!) and magic (%) lines, which are not Python."""
    return "\n".join("" if line.lstrip().startswith(("!", "%")) else line for line in source.splitlines())


def literal_assignments(nb) -> dict:
    """Every `NAME = <literal>` at the top level of the code cells."""
    found = {}
    for source in code_cells(nb):
        for node in ast.parse(python_only(source)).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                try:
                    found[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    pass
    return found


def assert_valid_notebook(nb) -> None:
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.metadata["kernelspec"]["language"] == "python"
    assert {c.cell_type for c in nb.cells} == {"markdown", "code"}
    for i, source in enumerate(code_cells(nb)):
        compile(python_only(source), f"<cell {i}>", "exec")
    # round trip through the on-disk format
    nbformat.validate(nbformat.reads(nbformat.writes(nb), as_version=4))


# -- training notebook -----------------------------------------------------------------------

def test_train_notebook_is_valid():
    assert_valid_notebook(render_train_notebook(SPEC))


# Each parameter of the training notebook and the spec field it is rendered from.
PARAMETERS = {"COMPETITION": "competition", "ARCH": "arch", "EPOCHS": "epochs", "LR": "lr", "ACCUM": "accum",
              "BS": "bs", "SEED": "seed", "PRECISION": "precision", "PRETRAINED": "pretrained",
              "VALID_PCT": "valid_pct", "PIPELINE": "pipeline"}


def test_train_notebook_carries_the_spec_as_literals():
    nb = render_train_notebook(SPEC, weights=("someone/timm-weights", "w.pth"), out_dir="sub")
    values = literal_assignments(nb)
    spec = SPEC.to_dict()
    for name, field in PARAMETERS.items():  # by name: two swapped parameters fail here
        assert name in values and values[name] == spec[field] and type(values[name]) is type(spec[field]), name
    assert values["SPEC"] == spec, "the whole spec should be written as one literal"
    assert values["WEIGHTS"] == ("someone/timm-weights", "w.pth")
    assert values["IDENTITY"] == {"slug": SPEC.slug, "spec_hash": SPEC.content_hash}
    assert values["OUT_DIR"] == "sub"
    assert "LABELS" not in values
    code = "\n".join(code_cells(nb))
    assert "Resize((640, 480))" in code
    assert "aug_transforms(size=(288, 224), min_scale=0.75)" in code


def test_train_notebook_uses_relative_kaggle_paths():
    code = "\n".join(code_cells(render_train_notebook(SPEC)))
    assert "/kaggle/" not in code and "/work/" not in code
    assert "INPUT = Path(\"../input\")" in code
    assert 'TTA_FILE, METRICS_FILE = "tta.pkl", "metrics.json"' in code  # written through the contract


def test_no_transforms_render_as_none():
    spec = build_spec({"arch": "resnet18", "competition": "digits-demo", "item": "", "batch": "None"})
    nb = render_train_notebook(spec)
    assert_valid_notebook(nb)
    values = literal_assignments(nb)
    assert values.get("item_tfms", "missing") is None and values.get("batch_tfms", "missing") is None


def test_hostile_name_stays_a_literal():
    name = "x'); import os; os.system('echo pwned'); ('\"\"\"\n# %% "
    spec = build_spec({"arch": "resnet18", "competition": "digits-demo", "name": name})
    nb = render_train_notebook(spec)
    assert_valid_notebook(nb)
    assert spec.to_dict() in literal_assignments(nb).values()
    calls = [node for source in code_cells(nb) for node in ast.walk(ast.parse(python_only(source)))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "system"]
    assert calls == []


def test_csv_labels_render_as_a_literal_and_only_when_given():
    plain = "\n".join(code_cells(render_train_notebook(SPEC)))
    assert "get_y=parent_label" in plain and "LABELS" not in plain and "pandas" not in plain
    labels = {"csv": "train.csv", "id": "x'); __import__('os').system('id'); ('", "label": "class\n# %%"}
    nb = render_train_notebook(SPEC, labels=labels)
    assert_valid_notebook(nb)
    assert labels in literal_assignments(nb).values()
    code = "\n".join(code_cells(nb))
    assert "get_items=labelled_images, get_y=label_of" in code and "parent_label" not in code
    calls = [node for source in code_cells(nb) for node in ast.walk(ast.parse(python_only(source)))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "system"]
    assert calls == []


def test_title_in_notebook_matches_slug():
    nb = render_train_notebook(SPEC)
    assert nb.cells[0].cell_type == "markdown"
    heading = nb.cells[0].source.splitlines()[0].lstrip("# ")
    assert slugify(heading) == SPEC.slug


# -- percent format --------------------------------------------------------------------------

def test_percent_to_notebook_splits_cells():
    text = ("# %% [markdown]\n# # Title\n# Some *text*\n#\n# - item\n\n"
            "# %%\nx = 1\n\ny = 2\n\n"
            "# %% [markdown]\n# ## Second\n"
            "# %%\n\n\n"  # an empty code cell is dropped
            "# %%\n!pip list\nprint(x + y)\n")
    nb = percent_to_notebook(text)
    nbformat.validate(nb)
    kinds = [c.cell_type for c in nb.cells]
    assert kinds == ["markdown", "code", "markdown", "code"]
    assert nb.cells[0].source == "# Title\nSome *text*\n\n- item"
    assert nb.cells[1].source == "x = 1\n\ny = 2"
    assert nb.cells[2].source == "## Second"
    assert nb.cells[3].source == "!pip list\nprint(x + y)"
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_percent_text_before_the_first_marker_is_kept():
    nb = percent_to_notebook("import os\n# %%\nx = 1\n")
    assert [c.source for c in nb.cells] == ["import os", "x = 1"]


# -- kernel metadata -------------------------------------------------------------------------

def test_kernel_metadata_fields():
    meta = kernel_metadata(SPEC.slug, "digits-demo", KernelOptions(username="alice"))
    assert meta["id"] == f"alice/{SPEC.slug}"
    assert slugify(meta["title"]) == SPEC.slug
    assert meta["code_file"] == f"{SPEC.slug}.ipynb"
    assert meta["language"] == "python" and meta["kernel_type"] == "notebook"
    assert meta["is_private"] is True
    assert meta["enable_gpu"] is True and meta["machine_shape"] == "NvidiaTeslaT4"
    assert meta["enable_internet"] is True
    assert meta["competition_sources"] == ["digits-demo"]
    assert meta["kernel_sources"] == [] and meta["dataset_sources"] == [] and meta["model_sources"] == []
    json.dumps(meta)  # plain JSON


def test_kernel_metadata_options_are_written_explicitly():
    options = KernelOptions(username="bob", gpu=True, accelerator="NvidiaTeslaP100", internet=False, private=False,
                            dataset_sources=("bob/timm-weights",), kernel_sources=("bob/run-a", "bob/run-b"),
                            model_sources=("bob/m/pyTorch/default/1",))
    meta = kernel_metadata("ensemble-abcdef12", "paddy-disease-classification", options)
    assert "enable_internet" in meta and meta["enable_internet"] is False
    assert meta["is_private"] is False
    assert meta["machine_shape"] == "NvidiaTeslaP100"
    assert meta["dataset_sources"] == ["bob/timm-weights"]
    assert meta["kernel_sources"] == ["bob/run-a", "bob/run-b"]
    assert meta["model_sources"] == ["bob/m/pyTorch/default/1"]
    assert meta["competition_sources"] == ["paddy-disease-classification"]


def test_kernel_metadata_without_gpu():
    meta = kernel_metadata(SPEC.slug, "digits-demo", KernelOptions(username="alice", gpu=False))
    assert meta["enable_gpu"] is False
    assert "machine_shape" not in meta


@pytest.mark.parametrize("slug", ["abc", "Bad_Slug", "x" * 51])
def test_kernel_metadata_refuses_bad_slugs(slug):
    with pytest.raises(SpecError):
        kernel_metadata(slug, "digits-demo", KernelOptions(username="alice"))


# -- the folder ------------------------------------------------------------------------------

def test_write_kernel_folder_writes_exactly_two_files(tmp_path):
    meta = kernel_metadata(SPEC.slug, "digits-demo", KernelOptions(username="alice"))
    folder = write_kernel_folder(tmp_path / "kernels" / SPEC.slug, render_train_notebook(SPEC), meta)
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{SPEC.slug}.ipynb", "kernel-metadata.json"])
    assert json.loads((folder / "kernel-metadata.json").read_text()) == meta
    nb = nbformat.read(folder / f"{SPEC.slug}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert list((tmp_path / "kernels").iterdir()) == [folder]  # no staging folder left behind


def test_write_kernel_folder_replaces_an_older_folder_whole(tmp_path):
    folder = tmp_path / "kernels" / SPEC.slug
    folder.mkdir(parents=True)
    (folder / "stale.ipynb").write_text("{}")
    (folder / "notes").mkdir()
    (folder / "kernel-metadata.json").write_text("old")
    meta = kernel_metadata(SPEC.slug, "digits-demo", KernelOptions(username="alice"))
    write_kernel_folder(folder, render_train_notebook(SPEC), meta)
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{SPEC.slug}.ipynb", "kernel-metadata.json"])
    assert json.loads((folder / "kernel-metadata.json").read_text())["id"] == f"alice/{SPEC.slug}"


def test_write_kernel_folder_refuses_an_invalid_notebook(tmp_path):
    bad = nbformat.v4.new_notebook()
    bad.cells.append({"cell_type": "nonsense"})
    meta = kernel_metadata(SPEC.slug, "digits-demo", KernelOptions(username="alice"))
    with pytest.raises(nbformat.ValidationError):
        write_kernel_folder(tmp_path / SPEC.slug, bad, meta)
    assert not (tmp_path / SPEC.slug).exists()


# -- ensemble notebook -----------------------------------------------------------------------

NAMES = ["resnet18-aaaaaaaa", "convnext-small-bbbbbbbb"]


def _member(name: str, sha256: str = "0" * 64) -> dict:
    return {"name": name, "source": f"alice/{name}", "version": 1, "tta": "tta.pkl",
            "identity": {"slug": name, "spec_hash": name[-8:]}, "sha256": sha256}


MEMBERS = [_member(n) for n in NAMES]


def test_ensemble_notebook_is_valid_and_inlines_ensemble_py():
    nb = render_ensemble_notebook("ensemble-12345678", "digits-demo", MEMBERS, [1.0, 2.0])
    assert_valid_notebook(nb)
    code = "\n".join(code_cells(nb))
    assert runtime_source(["contract", "ensemble"]).strip() in code
    values = literal_assignments(nb)
    assert values["MEMBERS"] == MEMBERS and values["WEIGHTS"] == [1.0, 2.0]
    assert values["COMPETITION"] == "digits-demo"
    assert slugify(nb.cells[0].source.splitlines()[0].lstrip("# ")) == "ensemble-12345678"
    assert "fastkaggle" not in code


def test_ensemble_notebook_without_weights():
    nb = render_ensemble_notebook("ensemble-12345678", "digits-demo", MEMBERS, None)
    assert_valid_notebook(nb)
    assert literal_assignments(nb).get("WEIGHTS", "missing") is None


def _ensemble_inputs(inputs, layout: str, identity_of=None) -> list[dict]:
    """Kaggle-shaped inputs for the ensemble kernel (`layout`: current or flat); returns its members."""
    import hashlib

    import torch

    comp = inputs / ("competitions/digits-demo" if layout == "current" else "digits-demo")
    comp.mkdir(parents=True)
    with open(comp / "sample_submission.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["image_id", "label"], ["c.png", "cat"], ["a.png", "cat"], ["b.png", "cat"]])
    files, vocab, members = ["b.png", "a.png", "c.png"], ["cat", "dog"], []
    probs = {NAMES[0]: [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]], NAMES[1]: [[0.6, 0.4], [0.3, 0.7], [0.4, 0.6]]}
    for name in NAMES:
        folder = inputs / (f"notebooks/alice/{name}" if layout == "current" else name)
        folder.mkdir(parents=True)
        identity = (identity_of or {}).get(name, _member(name)["identity"])
        torch.save({"probs": torch.tensor(probs[name]), "files": files, "vocab": vocab, "identity": identity,
                    "metrics": {"tta_error": 0.1}}, folder / "tta.pkl")
        members.append(_member(name, hashlib.sha256((folder / "tta.pkl").read_bytes()).hexdigest()))
    return members


def _run_ensemble(tmp_path, monkeypatch, members, weights) -> None:
    working = tmp_path / "working"
    working.mkdir()
    nb = render_ensemble_notebook("ensemble-12345678", "digits-demo", members, weights)
    monkeypatch.chdir(working)
    namespace: dict = {"__name__": "__main__"}
    for source in code_cells(nb):
        exec(compile(python_only(source), "<ensemble>", "exec"), namespace)  # noqa: S102


@pytest.mark.parametrize("layout", ["current", "flat"])
def test_ensemble_notebook_runs_in_both_kaggle_layouts(tmp_path, monkeypatch, layout):
    """Execute the rendered ensemble cells as a kernel would, with inputs where Kaggle mounts them today
    (../input/notebooks/<owner>/<slug>) or did before (../input/<slug>) -> submission.csv."""
    members = _ensemble_inputs(tmp_path / "input", layout)
    _run_ensemble(tmp_path, monkeypatch, members, [1.0, 3.0])
    with open(tmp_path / "working" / "submission.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    # Weights 1:3 -> c is (0.7 + 3*0.4)/4 = 0.475 cat, so dog (unweighted it would be cat); rows follow the sample.
    assert rows == [["image_id", "label"], ["c.png", "dog"], ["a.png", "dog"], ["b.png", "cat"]]
    summary = json.loads((tmp_path / "working" / "ensemble.json").read_text())
    assert summary["members"] == NAMES and summary["weights"] == [1.0, 3.0] and summary["rows"] == 3


def test_ensemble_notebook_refuses_outputs_of_another_run(tmp_path, monkeypatch):
    other = {"slug": NAMES[0], "spec_hash": "ffffffff"}
    members = _ensemble_inputs(tmp_path / "input", "current", identity_of={NAMES[0]: other})
    with pytest.raises(EnsembleError, match="belongs to run .*ffffffff.*not"):
        _run_ensemble(tmp_path, monkeypatch, members, None)


def test_ensemble_notebook_refuses_another_version_of_the_same_run(tmp_path, monkeypatch):
    """Kaggle attaches a kernel's latest version: outputs of the same run but not the version the toolkit
    pulled (another sha256) are refused, in one line."""
    members = _ensemble_inputs(tmp_path / "input", "current")
    members[1] = {**members[1], "sha256": "1" * 64}
    with pytest.raises(EnsembleError, match=f"is not version 1 of alice/{NAMES[1]}: Kaggle attached another version"):
        _run_ensemble(tmp_path, monkeypatch, members, None)


def test_ensemble_notebook_says_which_input_is_missing(tmp_path, monkeypatch):
    members = _ensemble_inputs(tmp_path / "input", "current")
    members[0] = {**members[0], "source": "alice/not-attached-1234"}
    with pytest.raises(FileNotFoundError, match="input alice/not-attached-1234 not found: no tta.pkl in "
                                                "../input/notebooks/alice/not-attached-1234 or ../input/not-attached"):
        _run_ensemble(tmp_path, monkeypatch, members, None)


# -- the templates: short, made of blocks, importing only what Kaggle has ------------------------------------

TEMPLATE = Path(__file__).resolve().parent.parent / "toolkit" / "kernel" / "templates" / "train.py.j2"
BLOCKS = ("dataloaders", "learner", "fit", "predict", "outputs")


def template_code_lines(text: str) -> list[str]:
    """A template's code lines: not blank, not comments (Python's or Jinja's), not in markdown cells."""
    import re

    text, lines, markdown = re.sub(r"\{#.*?#\}", "", text, flags=re.S), [], False
    for line in text.splitlines():
        if line.startswith("# %%"):
            markdown = "[markdown]" in line
        elif not markdown and line.strip() and not line.strip().startswith("#"):
            lines.append(line)
    return lines


def test_the_training_template_is_parameters_markdown_and_calls():
    code = template_code_lines(TEMPLATE.read_text())
    assert len(code) < 120, len(code)
    assert not any(line.startswith(("class ", "    def ")) for line in code)  # library code lives in runtime/


def test_the_training_template_has_top_level_blocks():
    from toolkit.kernel.render import _environment

    assert set(BLOCKS) <= set(_environment().get_template("train.py.j2").blocks)
    tree = ast.parse(python_only("\n".join(code_cells(render_train_notebook(SPEC)))))
    made = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}
    assert {"dls", "learn", "predictions", "metrics"} <= made  # each block's name, made at the top level


def _user_template(tmp_path: Path, text: str) -> Recipe:
    path = tmp_path / "mine.py.j2"
    path.write_text('{% extends "train.py.j2" %}\n' + text)
    return Recipe("mine", path, "templates/mine.py.j2")


def test_a_user_template_overrides_blocks_and_keeps_the_shipped_part_with_super(tmp_path):
    template = _user_template(tmp_path, "{% block fit %}{{ super() }}\nlearn.export('extra.pkl')\n{% endblock %}\n"
                                       "{% block predict %}predictions = tta_predictions(learn, tst_files[:2])\n"
                                       "{% endblock %}\n")
    nb = render_train_notebook(SPEC, recipe=template)
    assert_valid_notebook(nb)
    code = "\n".join(code_cells(nb))
    assert "learn.fine_tune(EPOCHS, LR)" in code and "learn.export('extra.pkl')" in code
    assert "tta_predictions(learn, tst_files[:2])" in code and "tta_predictions(learn, tst_files)" not in code
    assert literal_assignments(nb)["ARCH"] == SPEC.arch  # the parameters and the rest as shipped


def test_a_user_template_with_a_plain_fit_block_trains_and_writes_every_output(tmp_path, monkeypatch):
    """The rendered notebook, run as a kernel would in a Kaggle-shaped folder, with the fit block replaced
    by plain top-level Python."""
    import sys
    import types

    from toolkit.competitions.demo import build_competition
    from toolkit.kernel.contract import MODEL_OUTPUTS, TRAIN_OUTPUTS, check_metrics

    comp = build_competition(tmp_path / "competitions", limit=40)
    (tmp_path / "input" / "competitions").mkdir(parents=True)
    (tmp_path / "input" / "competitions" / comp.name).symlink_to(comp)
    (tmp_path / "working").mkdir()
    monkeypatch.chdir(tmp_path / "working")
    template = _user_template(tmp_path, "{% block fit %}learn.add_cb(EpochLog())\nlearn.fit(1, 1e-3)\n"
                                       "{% endblock %}\n")
    spec = build_spec({"arch": "resnet18", "competition": comp.name, "item": "Resize(16)", "batch": "None",
                       "epochs": 1, "bs": 8, "pretrained": False})
    kernel = types.ModuleType("user_kernel")  # registered, so loader workers can pickle its classes
    monkeypatch.setitem(sys.modules, "user_kernel", kernel)
    for source in code_cells(render_train_notebook(spec, recipe=template)):
        exec(compile(source, "<user kernel>", "exec"), kernel.__dict__)  # noqa: S102
    written = sorted(p.name for p in (tmp_path / "working").iterdir())
    assert written == sorted(TRAIN_OUTPUTS + MODEL_OUTPUTS)
    metrics = check_metrics(json.loads((tmp_path / "working" / "metrics.json").read_text()))
    assert [r["phase"] for r in metrics["epochs"]] == ["train"] and metrics["arch"] == "resnet18"


def _rendered_notebooks() -> dict[str, nbformat.NotebookNode]:
    from toolkit.kernel.render import notebook_code, render_pack_notebook

    labels = {"csv": "train.csv", "id": "image_id", "label": "label"}
    members = [{**m, "item": "Resize(16)", "batch": None} for m in MEMBERS]
    return {"train": render_train_notebook(SPEC), "train-csv": render_train_notebook(SPEC, labels=labels),
            "pack": render_pack_notebook("pack-2-abcdef12", {"a": notebook_code(render_train_notebook(SPEC))}),
            "ensemble": render_ensemble_notebook("ensemble-12345678", "digits-demo", MEMBERS, None),
            "ensemble-predict": render_ensemble_notebook("ensemble-12345678", "digits-demo", members, None, True)}


@pytest.mark.parametrize("kind", ["train", "train-csv", "pack", "ensemble", "ensemble-predict"])
def test_rendered_notebooks_import_only_what_kaggles_image_has(kind):
    """The toolkit is not on Kaggle: its code is pasted (the toolkit's error types are a guarded fallback)."""
    from kaggle_imports import imported_modules, not_on_kaggle

    code = python_only("\n".join(code_cells(_rendered_notebooks()[kind])))
    assert not_on_kaggle(code) == set()
    assert "toolkit" not in imported_modules(code)
    assert not any(line.startswith(("from .", "from __future__")) for line in code.splitlines())
