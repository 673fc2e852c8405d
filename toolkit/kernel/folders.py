"""Kernel folders on disk: writing exactly what is pushed (<slug>.ipynb + kernel-metadata.json) in one swap,
and copying a rendered kernel under another slug. Rendering itself is render.py's and writes nothing."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

from toolkit.kernel.ipynb import notebook_text
from toolkit.specs.spec import check_slug, title_for


def swap_in(staging: Path, folder: Path, attempts: int = 5) -> None:
    """Put `staging` in place of `folder`. Two commands rendering the same run at once write the same
    files; whichever rename comes second moves the first one's folder aside and retries."""
    for attempt in range(attempts):
        try:
            if folder.exists():
                old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
                os.replace(folder, old)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(staging, folder)
            return
        except OSError as exc:  # the other command's rename came in between
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT) or attempt == attempts - 1:
                raise


def copy_kernel_folder(folder: Path, slug: str) -> Path:
    """The kernel in `folder` as a new kernel `slug` beside it: the same notebook, its id, title and code file
    renamed (what is pushed when the rendered slug is blocked on Kaggle)."""
    import nbformat

    meta = json.loads((folder / "kernel-metadata.json").read_text())
    notebook = nbformat.read(folder / meta["code_file"], as_version=4)
    owner = meta["id"].split("/", 1)[0]
    check_slug(slug)
    meta.update(id=f"{owner}/{slug}", title=title_for(slug), code_file=f"{slug}.ipynb")
    return write_kernel_folder(folder.parent / slug, notebook, meta)


def write_kernel_folder(folder: Path, notebook: dict, metadata: dict) -> Path:
    """Write exactly what is pushed: <slug>.ipynb (as nbformat writes it) + kernel-metadata.json, swapped in
    whole; an invalid notebook (nbformat.ValidationError) writes nothing."""
    text = notebook_text(notebook)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        (staging / metadata["code_file"]).write_text(text, encoding="utf-8")
        (staging / "kernel-metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
        swap_in(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return folder
