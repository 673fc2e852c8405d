"""An install outside a checkout: the wheel carries its templates and data, and the base install (no
`[local]` extra) renders, dry-runs a Kaggle push and shows status without torch, fastai or timm; the ray backend
without the `[ray]` extra says which extra it needs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from emulator import KEY, USER, build_tiny_competition

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
# What only the `[local]` extra installs: none of it may load for the commands that render, push or show status.
HEAVY = ("torch", "torchvision", "fastai", "timm", "nbclient", "ipykernel", "sklearn", "matplotlib")
DRY_RUN = ["train", "--arch", "resnet18", "--dry-run", "--backend", "kaggle"]
# The files the package reads at run time besides its modules: every one must ship in the wheel.
DATA = tuple(sorted(p.relative_to(ROOT).as_posix() for folder in ("toolkit/kernel/templates", "toolkit/kernel/examples", "toolkit/data",
                                                                    "toolkit/backends/local/kaggle_site")
                    for p in (ROOT / folder).iterdir() if p.is_file()))


def empty_project(folder: Path) -> Path:
    folder.mkdir()
    (folder / "toolkit.toml").write_text(f'username = "{USER}"\ncompetition = "tiny-comp"\n')
    return folder


def clean_env(home: Path) -> dict[str, str]:
    """No toolkit or Kaggle settings from the caller, and no credentials anywhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOOLKIT_", "KAGGLE_", "VIRTUAL_ENV"))}
    return {**env, "HOME": str(home), "COLUMNS": "200"}


def run(argv: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (argv, done.stdout, done.stderr)
    return done


def imported(stderr: str) -> set[str]:
    """Top-level modules named by `python -X importtime`."""
    return {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in stderr.splitlines() if "|" in line}


SWEEP = ["sweep", str(ROOT / "sweeps" / "paddy-small.toml"), "--dry-run", "--backend", "kaggle"]


# Besides: rendering writes notebooks as plain JSON and reads its templates itself (no nbformat, jsonschema or
# jupytext); what renders nothing loads no jinja2 either.
RENDERING = ("kaggle", "kagglesdk", "jupytext", "nbformat", "jsonschema")
SHOWING = RENDERING + ("jinja2",)


@pytest.mark.parametrize("command, unwanted", [(["kpush", *DRY_RUN], RENDERING), (["kpush", *SWEEP], RENDERING),
                                               (["kstatus", "--no-refresh"], SHOWING), (["kpush", "--help"], SHOWING)])
def test_light_commands_import_nothing_heavy(tmp_path, command, unwanted):
    project = empty_project(tmp_path / "project")
    done = run([sys.executable, "-X", "importtime", "-m", "toolkit.cli", *command], project,
               clean_env(tmp_path / "home"))
    assert "toolkit" in imported(done.stderr)  # the check sees the toolkit's own imports
    assert imported(done.stderr).isdisjoint(HEAVY + unwanted + ("ray",))


# Pinned exactly in pyproject.toml, as the lock pins them: kaggle 2.2.4 lacks get_submission, the backend builds
# kagglesdk 0.1.38's requests itself, and fastai breaks on fastcore 2 (fastai/fastai#4154).
EXACT = ("kaggle", "kagglesdk", "fastai", "fastcore")


def test_the_kaggle_client_its_sdk_and_fastcore_are_pinned_as_locked():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["local"]]
    locked = dict(line.split("==", 1) for line in LOCK.read_text().splitlines() if "==" in line)
    for name in EXACT:
        assert f"{name}=={locked[name]}" in declared, name


def build_wheel(tmp_path: Path) -> Path:
    """From a copy of the sources, so the build leaves nothing in the checkout."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "toolkit", source / "toolkit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
         "-q", "-w", tmp_path / "dist", source], tmp_path, dict(os.environ))
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    return wheel


@pytest.mark.e2e
@pytest.mark.slow  # builds the wheel and a virtualenv: the packaging tier
def test_the_wheel_renders_pushes_and_shows_status_without_torch(tmp_path, start_emulator):
    wheel = build_wheel(tmp_path)
    assert set(DATA) <= set(zipfile.ZipFile(wheel).namelist())

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], tmp_path, dict(os.environ))
    constraints = tmp_path / "constraints.txt"  # the base dependencies at requirements.lock's versions
    constraints.write_text("".join(line + "\n" for line in LOCK.read_text().splitlines()
                                   if line and not line.startswith("#")))
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", "-c", constraints,
         wheel], tmp_path, dict(os.environ))

    project, env = empty_project(tmp_path / "project"), clean_env(tmp_path / "home")
    python = venv / "bin" / "python"
    for module in HEAVY:
        probe = subprocess.run([python, "-c", f"import {module}"], cwd=project, env=env, capture_output=True)
        assert probe.returncode != 0, f"{module} is installed without the [local] extra"
    pushed = run([venv / "bin" / "kpush", *DRY_RUN], project, env)
    (folder,) = (project / "kernels").iterdir()
    assert f"rendered kernels/{folder.name}" in pushed.stdout
    notebook = json.loads((folder / f"{folder.name}.ipynb").read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == "python3" and len(notebook["cells"]) > 3
    assert json.loads((folder / "kernel-metadata.json").read_text())["id"] == f"{USER}/{folder.name}"
    shown = run([venv / "bin" / "kstatus", "--no-refresh"], project, env)
    assert "no runs recorded yet" in shown.stdout and "if they were pushed, `kstatus`" in shown.stderr

    # Over the Kaggle emulator: the base install pushes and follows the run; reading outputs needs [local].
    build_tiny_competition(tmp_path / "competitions")
    emu = start_emulator()
    env.update(emu.client_env(), KAGGLE_USERNAME=USER, KAGGLE_KEY=KEY, KAGGLE_CONFIG_DIR=str(tmp_path / "home"))
    run([venv / "bin" / "kpush", "train", "--arch", "resnet18", "--backend", "kaggle"], project, env)
    assert f"{folder.name} │ train │ 1" in run([venv / "bin" / "kstatus", "--backend", "kaggle"], project, env).stdout
    pulled = subprocess.run([venv / "bin" / "kpull", "outputs", "--backend", "kaggle", "--no-wait"], cwd=project,
                            env=env, capture_output=True, text=True, timeout=120)
    assert pulled.returncode == 2 and pulled.stderr.count("\n") == 1, pulled.stderr
    assert "error: this needs " in pulled.stderr and "kaggle-kernel-toolkit[local]" in pulled.stderr
    assert len(emu.calls("SaveKernel")) == 1
    # The ray backend needs the [ray] extra: without it, one line naming it.
    from toolkit.competitions.demo import build_competition

    build_competition(tmp_path / "ray-competitions", limit=40)
    env.update(RAY_ADDRESS="http://127.0.0.1:9", TOOLKIT_COMPETITIONS_ROOT=str(tmp_path / "ray-competitions"))
    rayed = subprocess.run([venv / "bin" / "kpush", "train", "--arch", "resnet18", "--backend", "ray",
                            "--competition", "digits-demo"], cwd=project, env=env, capture_output=True, text=True,
                           timeout=120)
    assert rayed.returncode == 2 and rayed.stderr.strip().splitlines()[-1] == (
        "error: the ray backend needs Ray, which the toolkit's [ray] extra installs (pip install "
        "'kaggle-kernel-toolkit[ray]')"), rayed.stderr
    # The installed package is the wheel's, not this checkout's.
    where = run([python, "-c", "import toolkit; print(toolkit.__file__)"], project, env).stdout
    assert str(venv) in where and str(ROOT) not in where
