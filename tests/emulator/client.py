"""What tests need around the emulator: the real client pointed at it (once per process, before kaggle is
imported), credentials and a project folder, a tiny competition, kernel folders made from code cells, and
waiting for a kernel or a score on either backend."""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .state import KaggleEmulator

USER, KEY = "testuser", "emulator-key-0123456789abcdef"


def build_tiny_competition(root: Path, name: str = "tiny-comp") -> Path:
    """A competition folder with just the CSVs the emulator checks (for scripted, non-running tests)."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"{i}.png" for i in range(4)]
    labels = ["a", "b", "a", "b"]
    (folder / "sample_submission.csv").write_text("image_id,label\n" + "".join(f"{i},a\n" for i in ids))
    (folder / "solution.csv").write_text("image_id,label\n" + "".join(f"{i},{l}\n" for i, l in zip(ids, labels)))
    return folder


_CLIENT_CONFIG_DIR: Path | None = None


def prepare_client() -> Path:
    """Fix what the kaggle client reads at import time, once per test process, then import it.

    KaggleApi decides LOCALHOST-vs-production and its config directory when first imported, so
    both are set here before that (a temp config dir: the real ~/.kaggle is never touched).
    """
    global _CLIENT_CONFIG_DIR

    if _CLIENT_CONFIG_DIR is None:
        if "kaggle.api.kaggle_api_extended" in sys.modules:
            raise RuntimeError("kaggle was imported before the emulator tests could point it at a temp config")
        _CLIENT_CONFIG_DIR = Path(tempfile.mkdtemp(prefix="kaggle-config-"))
        atexit.register(shutil.rmtree, _CLIENT_CONFIG_DIR, True)  # one per test process, gone with it
        os.environ["KAGGLE_API_ENVIRONMENT"] = "LOCALHOST"
        os.environ["KAGGLE_CONFIG_DIR"] = str(_CLIENT_CONFIG_DIR)
        with contextlib.redirect_stdout(io.StringIO()):
            from kaggle.api.kaggle_api_extended import KaggleApi  # noqa: F401
    return _CLIENT_CONFIG_DIR


def use_emulator(emu: "KaggleEmulator", monkeypatch: Any, tmp_path: Path, user: str, key: str, **env: str) -> None:
    """Point the real client and the toolkit at `emu`: fake credentials, a throwaway HOME (no real
    ~/.kaggle tokens) and project folder, plus any TOOLKIT_* settings in `env`."""
    values = {**emu.client_env(), "KAGGLE_USERNAME": user, "KAGGLE_KEY": key, "HOME": str(tmp_path / "home"),
              "TOOLKIT_PROJECT": str(tmp_path / "project"), **env}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("KAGGLE_API_TOKEN", raising=False)
    (tmp_path / "project").mkdir(exist_ok=True)


def write_kernel(root: Path, slug: str, *cells: str, competition: str = "tiny-comp", username: str = USER,
                 **options: Any) -> Path:
    """A kernel folder under `root` running `cells`, rendered as the toolkit renders (KernelOptions `options`)."""
    from toolkit.kernel.folders import write_kernel_folder
    from toolkit.kernel.render import KernelOptions, kernel_metadata, percent_to_notebook

    notebook = percent_to_notebook("".join(f"# %%\n{cell}\n" for cell in cells or ("print('hello')",)))
    meta = kernel_metadata(slug, competition, KernelOptions(username=username, **options))
    return write_kernel_folder(root / slug, notebook, meta)


def wait_until_done(backend: Any, slug: str, version: int, timeout: float = 120):
    """The kernel version's final KernelState, polling either backend."""
    deadline = time.monotonic() + timeout
    while not (state := backend.status(slug, version)).status.terminal:
        assert time.monotonic() < deadline, f"{slug} v{version} did not finish"
        time.sleep(0.2)
    return state


def wait_scored(backend: Any, competition: str, ref: str, timeout: float = 120):
    """The submission's result once it is no longer PENDING."""
    deadline = time.monotonic() + timeout
    while (result := backend.submission(competition, ref)).status == "PENDING":
        assert time.monotonic() < deadline, f"submission {ref} stayed PENDING"
        time.sleep(0.2)
    return result
