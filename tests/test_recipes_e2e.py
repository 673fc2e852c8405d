"""The user's own recipes, trained for real through the console scripts: a block override on the local backend
(Kaggle's older flat input layout) and over the Kaggle emulator (the current one), a user's notebook ensembled
with a run of the shipped template, `--check` catching a broken template before anything is pushed, and
outputs that break the contract refused by kpull and ksubmit."""

from __future__ import annotations

import json
import time

import pytest
from console import console, one_line
from test_recipes import SMOOTH, notebook_template

from toolkit.core.config import load_config
from toolkit.core.status import Status
from toolkit.project import Project

TINY = ["--item", "Resize(16)", "--batch", "aug_transforms(size=16, do_flip=False)", "--epochs", "1", "--bs", "16",
        "--scratch"]
NOTEBOOK_TINY = ["--epochs", "1", "--bs", "16", "--scratch"]  # what the test notebook declares, besides ARCH
POLL = {"TOOLKIT_POLL_INITIAL_S": "0.3", "TOOLKIT_POLL_MAX_S": "1"}
BROKEN = '{% extends "train.py.j2" %}\n{% block fit %}\nlearn.add_cb(EpochLog())\nlearn.fit_one_cycle(1, x)\n{% endblock %}\n'
NO_VOCAB = ('{% extends "train.py.j2" %}\n{% block outputs %}{{ super() }}\n'
            "_tta = torch.load(Path(OUT_DIR)/'tta.pkl', weights_only=True)\ndel _tta['vocab']\n"
            "torch.save(_tta, Path(OUT_DIR)/'tta.pkl')\n{% endblock %}\n")


def local_project(tmp_path, limit: int = 60):
    from toolkit.competitions.demo import build_competition

    build_competition(tmp_path / "competitions", limit=limit)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "smooth.py.j2").write_text(SMOOTH)
    return tmp_path


@pytest.mark.e2e
@pytest.mark.slow
def test_a_block_override_and_a_users_notebook_train_and_are_ensembled_with_the_shipped_recipe(tmp_path):
    project = local_project(tmp_path)
    notebook_template(project / "templates" / "mine.ipynb")
    env = {**POLL, "TOOLKIT_INPUT_LAYOUT": "flat"}  # the older mounts: the resolver finds inputs there too
    runs = (TINY + ["--template", "smooth", "--param", "eps=0.1"],
            NOTEBOOK_TINY + ["--template", "mine", "--param", "lr_mult=2"], TINY)  # a notebook takes what it declares
    for flags in runs:
        pushed = console(project, "kpush", "train", "--arch", "resnet18", *flags, **env)
        assert pushed.returncode == 0, pushed.stderr
    pulled = console(project, "kpull", "outputs", "--format", "json", **env)
    assert pulled.returncode == 0, pulled.stderr
    rows = {(r["template"], json.dumps(r["params"])): r for r in json.loads(pulled.stdout)}
    assert set(rows) == {("smooth", '{"eps": 0.1}'), ("mine", '{"lr_mult": 2}'), ("", "{}")}
    assert all(r["status"] == "COMPLETE" and r["tta_error"] is not None for r in rows.values())
    shown = console(project, "kpull", "outputs", "--no-wait", **env)
    assert "eps=0.1" in shown.stdout and "lr_mult=2" in shown.stdout  # the params column
    submitted = console(project, "ksubmit", "ensemble", "--run", "template=mine", "--run", rows[("", "{}")]["slug"],
                        **env)
    assert submitted.returncode == 0, submitted.stderr
    assert "ensemble score:" in submitted.stdout
    (sub,) = Project(load_config(project)).store.submissions()
    assert sorted(sub.members) == sorted([rows[("mine", '{"lr_mult": 2}')]["slug"], rows[("", "{}")]["slug"]])


@pytest.mark.e2e
@pytest.mark.slow
def test_a_block_override_trains_over_the_kaggle_emulator(start_emulator, tmp_path):
    local_project(tmp_path)
    start_emulator(competitions=tmp_path / "competitions", run_kernels=True,
                   env={**POLL, "TOOLKIT_BACKEND": "kaggle", "TOOLKIT_COMPETITION": "digits-demo"})
    work = tmp_path / "project"
    (work / "templates").mkdir()
    (work / "templates" / "smooth.py.j2").write_text(SMOOTH)
    pushed = console(work, "kpush", "train", "--arch", "resnet18", *TINY, "--template", "smooth", "--param",
                     "eps=0.2", "--wait")
    assert pushed.returncode == 0, pushed.stderr
    pulled = console(work, "kpull", "outputs", "--format", "json")
    (row,) = json.loads(pulled.stdout)
    assert (row["status"], row["template"], row["params"]) == ("COMPLETE", "smooth", {"eps": 0.2})


@pytest.mark.e2e
@pytest.mark.slow  # a failing check is tested in the everyday suite by test_notebooks.py
def test_check_catches_a_broken_template_in_under_a_minute_and_leaves_nothing_recorded(start_emulator, tmp_path):
    local_project(tmp_path)
    emu = start_emulator(competitions=tmp_path / "competitions",
                         env={"TOOLKIT_BACKEND": "kaggle", "TOOLKIT_COMPETITION": "digits-demo",
                              "TOOLKIT_COMPETITIONS_ROOT": str(tmp_path / "competitions")})
    work = tmp_path / "project"
    (work / "templates").mkdir()
    (work / "templates" / "broken.py.j2").write_text(BROKEN)
    start = time.monotonic()
    result = console(work, "kpush", "train", "--arch", "resnet18", *TINY, "--template", "broken", "--check")
    took = time.monotonic() - start
    line = one_line(result)
    assert result.returncode == 2 and took < 60, (took, line)
    assert "templates/broken.py.j2 line 4 (block fit)" in line and "NameError: name 'x' is not defined" in line
    assert not Project(load_config(work)).store.runs() and not emu.calls("SaveKernel")


@pytest.mark.e2e
@pytest.mark.slow
def test_outputs_that_break_the_contract_are_refused_by_kpull_and_ksubmit(tmp_path):
    project = local_project(tmp_path, limit=40)
    (project / "templates" / "novocab.py.j2").write_text(NO_VOCAB)
    pushed = console(project, "kpush", "train", "--arch", "resnet18", *TINY, "--template", "novocab", "--wait", **POLL)
    assert pushed.returncode == 0, pushed.stderr  # the kernel itself ran to its end
    pulled = console(project, "kpull", "outputs", **POLL)
    assert pulled.returncode == 3
    assert "outputs break the contract" in pulled.stderr and "lacks vocab" in pulled.stderr
    (run,) = Project(load_config(project)).store.runs()
    assert run.status == Status.ERROR and "lacks vocab" in run.failure_message
    submitted = console(project, "ksubmit", "ensemble")
    assert submitted.returncode == 2 and "no finished runs" in one_line(submitted)
