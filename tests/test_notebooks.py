"""Real notebooks as they are, papermill's way, through the console scripts where a user meets them: what a
parameters cell declares is what a run may set, everything else is refused in one line; a percent template's
unknown block is refused; a failed check keeps its notebook and says what to do. The notebooks are Jeremy
Howard's Road to the Top Part 2 and Part 3 (tests/notebooks/, with the edits their first cell names)."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from console import console, error_line, one_line

from toolkit.competitions.demo import PADDY_NAME, build_competition

NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"
PART2, PART3 = "road-to-the-top-part-2", "road-to-the-top-part-3"
COMP = ["--competition", PADDY_NAME]


@pytest.fixture
def project(tmp_path):
    build_competition(tmp_path / "competitions", limit=60, paddy=True)
    (tmp_path / "templates").mkdir()
    for name in (PART2, PART3):
        shutil.copy(NOTEBOOKS / f"{name}.ipynb", tmp_path / "templates" / f"{name}.ipynb")
    return tmp_path


def rendered(project: Path) -> list[nbformat.NotebookNode]:
    return [nbformat.read(f / f"{f.name}.ipynb", as_version=4) for f in sorted((project / "kernels").iterdir())]


def injected(notebook: nbformat.NotebookNode) -> str:
    return next(c.source for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", []))


def test_a_notebook_gets_only_the_names_its_parameters_cell_declares(project):
    result = console(project, "kpush", "train", *COMP, "--arch", "resnet18", "--epochs", "1", "--template", PART2,
                     "--dry-run")
    assert result.returncode == 0, result.stderr
    [notebook] = rendered(project)
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert "parameters" in cells[1].metadata["tags"] and "injected-parameters" in cells[2].metadata["tags"]
    values = injected(notebook).split("# -- toolkit/kernel/runtime/")[0]
    assert "arch = 'resnet18'" in values and "epochs = 1" in values
    assert "item =" not in values and "lr =" not in values and "bs =" not in values  # not declared: not given
    assert "def setup_comp(" in injected(notebook) and "use_pretrained('resnet18'" in injected(notebook)


@pytest.mark.parametrize("flag, value, field", [("--lr", "0.1", "lr"), ("--item", "Resize(224)", "item"),
                                                ("--bs", "32", "bs"), ("--batch", "aug_transforms(size=128)", "batch")])
def test_a_flag_the_notebook_does_not_declare_is_refused_naming_what_it_declares(project, flag, value, field):
    line = one_line(console(project, "kpush", "train", *COMP, "--arch", "resnet18", flag, value, "--template", PART2,
                            "--dry-run"))
    assert f"templates/{PART2}.ipynb does not declare {field}, which --{field} sets" in line
    assert "(it declares arch, epochs)" in line and "add" in line
    assert not (project / "kernels").exists()


def test_an_undeclared_param_is_refused_and_a_declared_one_is_injected(project):
    line = one_line(console(project, "kpush", "train", *COMP, "--arch", "resnet18", "--param", "eps=0.1",
                            "--template", PART2, "--dry-run"))
    assert f"templates/{PART2}.ipynb does not read the parameter eps" in line
    result = console(project, "kpush", "train", *COMP, "--arch", "resnet18", "--param", "size=64", "--item",
                     "Resize(96)", "--template", PART3, "--dry-run")
    assert result.returncode == 0, result.stderr
    values = injected(rendered(project)[0]).split("# -- toolkit/kernel/runtime/")[0]
    assert "size = 64" in values and "item = Resize(96)" in values and "from fastai.vision.all import Resize" in values
    assert "accum =" in values and "epochs =" in values  # declared, their defaults shown as the run's


def test_toolkit_toml_train_defaults_are_refused_where_the_notebook_does_not_take_them(project):
    (project / "toolkit.toml").write_text("[train]\nlr = 0.002\n")
    line = one_line(console(project, "kpush", "train", *COMP, "--arch", "resnet18", "--template", PART2, "--dry-run"))
    assert "does not declare lr, which toolkit.toml's [train] sets" in line


def test_a_run_shows_only_what_its_template_received(project):
    console(project, "kpush", "train", *COMP, "--arch", "resnet18", "--template", PART3, "--param", "size=64",
            "--dry-run")
    line = next(x for x in injected(rendered(project)[0]).splitlines() if x.startswith("SPEC = "))
    spec = ast.literal_eval(ast.parse(line).body[0].value)
    assert spec["item"] == "Resize(480, method='squish')" and spec["epochs"] == 12 and spec["accum"] == 2
    assert spec["batch"] is None and spec["lr"] is None and spec["bs"] is None  # Part 3 sets its own
    assert spec["params"] == {"size": 64}


def test_a_percent_templates_unknown_block_is_refused_with_the_nearest(project):
    (project / "templates" / "typo.py.j2").write_text('{% extends "train.py.j2" %}\n'
                                                      "{% block learnr %}{{ super() }}\nx = 1\n{% endblock %}\n")
    line = one_line(console(project, "kpush", "train", *COMP, "--arch", "resnet18", "--template", "typo",
                            "--dry-run"))
    assert "templates/typo.py.j2: block 'learnr' is not a block of train.py.j2 (did you mean 'learner'?)" in line
    assert "its blocks: dataloaders, fit, learner, outputs, predict" in line


def test_a_percent_template_takes_only_the_params_it_reads(project):
    (project / "templates" / "smooth.py.j2").write_text(
        '{% extends "train.py.j2" %}\n{% block learner %}{{ super() }}\n'
        "learn.loss_func = LabelSmoothingCrossEntropyFlat(eps={{ params.eps }})\n{% endblock %}\n")
    line = one_line(console(project, "kpush", "train", *COMP, "--arch", "resnet18", "--template", "smooth",
                            "--param", "eps=0.1", "--param", "alpha=2", "--dry-run"))
    assert "templates/smooth.py.j2 does not read the parameter alpha" in line and "eps" in line
    ok = console(project, "kpush", "train", *COMP, "--arch", "resnet18", "--lr", "0.02", "--template", "smooth",
                 "--param", "eps=0.1", "--dry-run")
    assert ok.returncode == 0, ok.stderr  # it extends the shipped recipe, which reads every run field


def test_a_notebook_other_tools_saved_reads_as_jupyter_opens_it(project):
    path = project / "templates" / f"{PART2}.ipynb"
    data = json.loads(path.read_text())
    data["path_"] = "nbs/09.ipynb"  # nbdev's keys, as fastai/course22's clean notebooks have them
    for number, cell in enumerate(data["cells"]):
        cell["idx_"] = number
        cell.pop("id", None)
    path.write_text(json.dumps(data))
    result = console(project, "kpush", "train", *COMP, "--arch", "resnet18", "--template", PART2, "--dry-run")
    assert result.returncode == 0 and "Warning" not in result.stderr, result.stderr


def _broken_notebook(path: Path, before: str = "", after: str = "learn = None\n") -> None:
    cells = [nbformat.v4.new_code_cell(before or "x = 1"),
             nbformat.v4.new_code_cell("arch = 'resnet18'", metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell(after)]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)


@pytest.mark.e2e
def test_a_failed_check_keeps_its_notebook_and_says_what_to_do(project):
    _broken_notebook(project / "templates" / "early.ipynb", before="path = setup_comp('paddy-disease-classification')")
    line = error_line(console(project, "kpush", "train", *COMP, "--arch", "resnet18", "--template", "early", "--check",
                              "--dry-run"))
    assert "--check: templates/early.ipynb In [1]: `path = setup_comp('paddy-disease-classification')`: " \
           "NameError: name 'setup_comp' is not defined" in line, line
    assert "put the parameters cell above the first cell that uses it" in line
    kept = line.split("the check's notebook and log: ")[1].split(",")[0]
    executed = nbformat.read(project / kept, as_version=4)
    assert executed.cells[0].execution_count == 1 and executed.cells[0].outputs[0]["ename"] == "NameError"
    assert (project / kept).with_name("log.txt").is_file()
    assert not (project / ".toolkit" / "runs.sqlite").exists() or "early" not in \
        console(project, "kstatus", "--no-refresh").stdout


@pytest.mark.e2e
def test_a_module_python_312_removed_fails_the_check_naming_it(project):
    _broken_notebook(project / "templates" / "old.ipynb", after="import imp\n")
    line = error_line(console(project, "kpush", "train", *COMP, "--arch", "resnet18", "--template", "old", "--check",
                              "--dry-run"))
    assert "ModuleNotFoundError: No module named 'imp'" in line and "Python 3.12" in line, line
