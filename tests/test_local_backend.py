"""The local backend runs real notebooks in a Kaggle-shaped sandbox: versions, queueing, failures, isolation."""

from __future__ import annotations

import json

import pytest
from emulator import wait_until_done as _wait
from emulator import write_kernel

from toolkit.core.status import Status


def _kernel(folder, slug: str, *cells: str):
    return write_kernel(folder, slug, *cells, competition="digits-demo", username="local", gpu=False)


def _run(backend, folder, slug: str, *cells: str):
    """Push a kernel of these cells, wait for its end: (its final state, its log)."""
    pushed = backend.push(_kernel(folder, slug, *cells))
    state = _wait(backend, slug, pushed.version)
    return state, backend.logs(slug, pushed.version)


@pytest.fixture
def backend(local_backend):
    return local_backend()


def test_a_failing_cell_is_an_error_naming_the_cell(backend, tmp_path):
    state, log = _run(backend, tmp_path / "kernels", "fails-abc12345", "x = 1", "raise ValueError('boom in cell')")
    assert state.status == Status.ERROR
    assert state.failure_message == "In [2]: ValueError: boom in cell"
    assert "boom in cell" in log


def test_versions_queue_and_see_kaggle_layout_without_hidden_labels(backend, tmp_path):
    probe = ("import json, os; from pathlib import Path\n"
             "comp = Path('../input/competitions/digits-demo')\n"
             "Path('seen.json').write_text(json.dumps({'cwd': Path.cwd().name, 'entries': sorted(os.listdir(comp)),"
             " 'kaggle': os.environ.get('KAGGLE_KERNEL_RUN_TYPE')}))")
    folder = _kernel(tmp_path / "kernels", "probe-abc12345", probe)
    first, second = backend.push(folder), backend.push(folder)
    assert (first.version, second.version) == (1, 2)
    assert backend.status("probe-abc12345", 2).status == Status.QUEUED  # concurrency 1: waits its turn
    assert _wait(backend, "probe-abc12345", 1).status == Status.COMPLETE
    assert _wait(backend, "probe-abc12345", 2).status == Status.COMPLETE
    out = backend.output("probe-abc12345", 2, tmp_path / "out", ("seen.json",))
    seen = json.loads(out[0].read_text())
    assert seen == {"cwd": "working", "entries": ["sample_submission.csv", "test_images", "train_images"],
                    "kaggle": "Batch"}


def test_the_flat_layout_of_older_sessions(local_backend, tmp_path):
    backend = local_backend(input_layout="flat")
    state, log = _run(backend, tmp_path / "kernels", "flat-abc12345", "import os; print(sorted(os.listdir('../input')))")
    assert state.status == Status.COMPLETE
    assert "['digits-demo']" in log


def test_a_package_missing_from_kaggles_image_fails_as_it_would_there(backend, tmp_path):
    """fastkaggle (and the toolkit itself) are installed here but not in Kaggle's image: a kernel importing
    them fails here exactly as on Kaggle, while the image's packages import at the image's versions."""
    state, log = _run(backend, tmp_path / "kernels", "imports-abc12345",
                      "import fastai, timm, fastcore, importlib.util\n"
                      "print(fastai.__version__, timm.__version__, fastcore.__version__)\n"
                      "assert importlib.util.find_spec('toolkit') is None",
                      "import fastkaggle")
    assert state.status == Status.ERROR and "In [2]: ModuleNotFoundError" in state.failure_message, state
    assert "No module named 'fastkaggle'" in log
    assert "2.8.7 1.0.26 1.14.5" in log  # fastai, timm, fastcore as in Kaggle's image


def test_inputs_are_read_only_to_a_kernel(backend, tmp_path):
    """Kaggle mounts inputs read-only: writing under input/, directly or through the link to the real
    competition folder, fails with EROFS; the working directory stays writable."""
    comp = tmp_path / "competitions" / "digits-demo"
    state, log = _run(backend, tmp_path / "kernels", "writes-abc12345",
                      "open('mine.txt', 'w').write('fine')",
                      "import errno, os, shutil\n"
                      "real = os.path.realpath('../input/competitions/digits-demo/train_images')\n"
                      "attempts = [lambda: open('../input/competitions/digits-demo/new.csv', 'w'),\n"
                      "            lambda: os.remove('../input/competitions/digits-demo/sample_submission.csv'),\n"
                      "            lambda: shutil.rmtree(real), lambda: os.mkdir(real + '/new-class')]\n"
                      "for attempt in attempts:\n"
                      "    try: attempt()\n"
                      "    except OSError as e: assert e.errno == errno.EROFS, e\n"
                      "    else: raise AssertionError('a write under input/ went through')",
                      "open('../input/competitions/digits-demo/new.csv', 'w')")
    assert state.status == Status.ERROR and state.failure_message.startswith("In [3]: OSError"), state
    assert "Read-only file system" in log
    assert (comp / "sample_submission.csv").is_file() and (comp / "train_images").is_dir()
    assert not (comp / "new.csv").exists()


def _wheel(folder, name: str = "sessionpkg") -> str:
    """A pure-Python wheel of one module, made by hand (a wheel is a zip with its metadata)."""
    import zipfile

    path = folder / f"{name}-1.0-py3-none-any.whl"
    folder.mkdir(parents=True, exist_ok=True)
    info = f"{name}-1.0.dist-info"
    files = {f"{name}.py": "VALUE = 42\n", f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{n},,\n" for n in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for name_, text in files.items():
            zf.writestr(name_, text)
    return str(path)


def _environment_listing() -> list[str]:
    import sys
    import sysconfig
    from pathlib import Path

    site = Path(sysconfig.get_path("purelib", vars={"base": sys.prefix, "platbase": sys.prefix}))
    return sorted(p.name for p in site.iterdir())


def test_a_pip_install_in_a_kernel_stays_in_its_session(backend, tmp_path):
    """`!pip install` and `%pip install` in a notebook install into the session's own environment, as on Kaggle:
    the kernel imports the package, the toolkit's environment is unchanged, and the next session starts
    without it."""
    wheel, before = _wheel(tmp_path / "wheels"), _environment_listing()
    state, log = _run(backend, tmp_path / "kernels", "pip-abc12345",
                      f"!pip install --no-index --quiet {wheel}",
                      "import sessionpkg, sys\n"
                      "print('value', sessionpkg.VALUE, sessionpkg.__file__.startswith(sys.prefix))",
                      f"%pip install --no-index --quiet --force-reinstall {wheel}")
    assert state.status == Status.COMPLETE, (state, log)
    assert "value 42 True" in log
    assert _environment_listing() == before and "sessionpkg" not in " ".join(before)
    assert not (backend.kernels / "pip-abc12345" / "v1" / "session").exists()  # gone with the session
    state, _ = _run(backend, tmp_path / "kernels", "again-abc12345", "import sessionpkg")
    assert state.status == Status.ERROR and "No module named 'sessionpkg'" in state.failure_message
