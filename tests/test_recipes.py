"""The user's own recipes without training: free parameters (--param), project templates found by name, a
percent template's blocks, a notebook's injected parameters, and what each does to a run's identity. Through
the real console scripts where a user would meet it."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from console import console, one_line

from toolkit.core.errors import SpecError
from toolkit.kernel import recipes
from toolkit.kernel.render import render_train_notebook
from toolkit.specs.params import check_params, describe, parse_param, parse_params
from toolkit.specs.spec import build_spec

TINY = ["--item", "Resize(16)", "--batch", "aug_transforms(size=16, do_flip=False)", "--epochs", "1", "--bs", "16",
        "--scratch"]
SMOOTH = ('{% extends "train.py.j2" %}\n{% block learner %}{{ super() }}\n'
          'learn.loss_func = LabelSmoothingCrossEntropyFlat(eps={{ params.eps }})\n{% endblock %}\n')


def notebook_template(path: Path, tagged: bool = True) -> Path:
    """A user's plain fastai notebook: defaults in a cell tagged parameters, then training and save_learner."""
    cells = [nbformat.v4.new_code_cell("ARCH = 'resnet18'\nCOMPETITION = 'digits-demo'\nEPOCHS = 1\nLR = 0.01\n"
                                       "BS = 16\nSEED = 42\nVALID_PCT = 0.2\nPARAMS = {}",
                                       metadata={"tags": ["parameters"]} if tagged else {}),
             nbformat.v4.new_code_cell("from fastai.vision.all import *"),
             nbformat.v4.new_code_cell("path = find_input('competitions', COMPETITION, 'sample_submission.csv')\n"
                                       "dls = ImageDataLoaders.from_folder(path/'train_images', valid_pct=VALID_PCT, "
                                       "seed=SEED, item_tfms=Resize(16), bs=BS)\n"
                                       "learn = vision_learner(dls, ARCH, metrics=error_rate, pretrained=False)\n"
                                       "learn.fit_one_cycle(EPOCHS, LR * PARAMS.get('lr_mult', 1))"),
             nbformat.v4.new_code_cell("save_learner(learn, get_image_files(path/'test_images').sorted())")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


@pytest.fixture
def project(tmp_path):
    from toolkit.competitions.demo import build_competition

    build_competition(tmp_path / "competitions", limit=40)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "smooth.py.j2").write_text(SMOOTH)
    return tmp_path


# -- free parameters ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [("eps=0.1", 0.1), ("n=3", 3), ("on=True", True), ("x=None", None),
                                         ("sizes=(224, 288)", [224, 288]), ("d={'a': [1, 2]}", {"a": [1, 2]}),
                                         ("loss=focal", "focal"), ("s='two words'", "two words")])
def test_a_param_is_a_literal_or_a_word(text, value):
    assert parse_param(text)[1] == value


@pytest.mark.parametrize("text, says", [("eps", "NAME=VALUE"), ("2x=1", "not a parameter name"),
                                        ("f=__import__('os')", "neither a Python literal"),
                                        ("x=1e999", "finite"), ("s=two words", "neither")])
def test_a_param_that_is_neither_says_how(text, says):
    with pytest.raises(SpecError, match=says):
        parse_param(text)


def test_params_are_part_of_the_runs_identity_but_not_of_a_plain_runs():
    base = {"arch": "resnet18", "competition": "digits-demo"}
    plain, one, other = (build_spec({**base, **extra}) for extra in ({}, {"params": {"eps": 0.1}},
                                                                      {"params": {"eps": 0.2}}))
    assert len({plain.slug, one.slug, other.slug}) == 3
    assert plain.slug == build_spec({**base, "params": {}, "template": ""}).slug  # empty recipe fields add nothing
    assert parse_params(["eps=0.1", "eps=0.3"]) == {"eps": 0.3}  # the last one wins
    assert check_params({"b": 2, "a": (1,)}) == {"a": [1], "b": 2} and describe({"a": 1, "b": "x"}) == "a=1 b='x'"


# -- templates found by name -----------------------------------------------------------------------------------

def test_an_unknown_template_lists_those_there_are(project):
    line = one_line(console(project, "kpush", "train", "--arch", "resnet18", *TINY, "--template", "nope",
                            "--dry-run"))
    assert "no template 'nope'" in line and "found smooth in templates/" in line and "label_smoothing" in line
    assert not (project / "kernels").exists()


def test_a_shipped_examples_name_is_found_and_a_project_template_wins(project, tmp_path):
    assert recipes.find(project / "templates", "mixup").shown == "example mixup.py.j2"
    (project / "templates" / "mixup.py.j2").write_text('{% extends "train.py.j2" %}\n')
    assert recipes.find(project / "templates", "mixup").shown == "templates/mixup.py.j2"
    with pytest.raises(SpecError, match="shipped template"):
        build_spec({"arch": "resnet18", "competition": "digits-demo", "template": "train"})


def test_two_param_values_render_two_runs_and_the_template_is_in_their_identity(project):
    for eps in ("0.1", "0.2"):
        result = console(project, "kpush", "train", "--arch", "resnet18", *TINY, "--template", "smooth",
                         "--param", f"eps={eps}", "--dry-run")
        assert result.returncode == 0, result.stderr
    folders = sorted((project / "kernels").iterdir())
    assert len(folders) == 2
    sources = ["\n".join(c.source for c in nbformat.read(f / f"{f.name}.ipynb", as_version=4).cells)
               for f in folders]
    assert sorted(("eps=0.1" in s, "eps=0.2" in s) for s in sources) == [(False, True), (True, False)]
    assert all("PARAMS = {'eps': 0." in s and "LabelSmoothingCrossEntropyFlat" in s for s in sources)
    (project / "templates" / "smooth.py.j2").write_text(SMOOTH + "# edited\n")  # an edited template: a new run
    console(project, "kpush", "train", "--arch", "resnet18", *TINY, "--template", "smooth", "--param", "eps=0.1",
            "--dry-run")
    assert len(list((project / "kernels").iterdir())) == 3


def test_a_template_reading_a_param_not_given_says_so_in_one_line(project):
    line = one_line(console(project, "kpush", "train", "--arch", "resnet18", *TINY, "--template", "smooth",
                            "--dry-run"))
    assert "templates/smooth.py.j2" in line and "eps" in line and "--param" in line


def test_a_sweep_row_names_its_template_and_params(project):
    (project / "s.toml").write_text('[defaults]\narch = "resnet18"\nitem = "Resize(16)"\nbatch = "None"\n'
                                    'epochs = 1\npretrained = false\ntemplate = "smooth"\n'
                                    '[[run]]\nparams = { eps = 0.05 }\n[[run]]\nparams = { eps = 0.2 }\n')
    result = console(project, "kpush", "sweep", "s.toml", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert len(list((project / "kernels").iterdir())) == 2


# -- the user's own notebook ---------------------------------------------------------------------------------

def test_a_notebook_gets_the_runs_values_and_helpers_after_its_parameters_cell(project):
    path = notebook_template(project / "templates" / "mine.ipynb")
    spec = build_spec({"arch": "convnext_tiny", "competition": "digits-demo", "params": {"lr_mult": 2}})
    nb = render_train_notebook(spec, recipe=recipes.find(project / "templates", "mine"))
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert tags[0] == ["parameters"] and tags[1] == ["injected-parameters"] and len(nb.cells) == 5
    injected = nb.cells[1].source
    assert "ARCH = 'convnext_tiny'" in injected and "PARAMS = {'lr_mult': 2}" in injected
    assert "def find_input(" in injected and "def save_learner(" in injected
    assert nb.metadata["kernelspec"]["name"] == "python3"
    again = render_train_notebook(spec, recipe=recipes.find(project / "templates", "mine"))
    assert [c.source for c in again.cells] == [c.source for c in nb.cells]  # rendering twice injects once
    assert path.read_text().count("injected-parameters") == 0  # the user's file is never changed


def test_a_notebook_without_a_parameters_cell_says_how_to_tag_one(project):
    notebook_template(project / "templates" / "untagged.ipynb", tagged=False)
    line = one_line(console(project, "kpush", "train", "--arch", "resnet18", *TINY, "--template", "untagged",
                            "--dry-run"))
    assert "templates/untagged.ipynb has no cell tagged 'parameters'" in line and "Tags" in line
