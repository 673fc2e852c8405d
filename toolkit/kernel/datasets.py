"""Datasets a kernel attaches (`dataset_sources`), as folders laid out here and uploaded as they are: a
`dataset-metadata.json` beside the files, each subfolder uploaded as one zip archive (kaggle 2.2.5's
dataset_create_new / dataset_create_version with dir_mode="zip"), which Kaggle unpacks into a folder of that name
("the same file hierarchy after the archives are automatically uncompressed by the backend and provided to Kernels",
Kaggle/kaggle-cli#111). Naming, laying out and hashing; uploading is the backend's job."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from toolkit.kernel.folders import swap_in
from toolkit.specs.spec import slugify

METADATA_FILE = "dataset-metadata.json"  # the client's DATASET_METADATA_FILE: never uploaded as a file
# kaggle 2.2.5 dataset_create_new: "The dataset slug must be between 6 and 50 characters" (the title too).
SLUG_MIN, SLUG_MAX = 6, 50
# Licenses Kaggle takes by name (Kaggle/kaggle-cli docs/datasets_metadata.md): a run's model is the user's own work;
# timm's weights carry each model's own license, which is not known here.
MEMBERS_LICENSE, WEIGHTS_LICENSE = "copyright-authors", "unknown"


def dataset_slug(name: str) -> str:
    """A dataset slug Kaggle takes: lowercase letters, digits and single hyphens ("Slug can only contain
    alphanumeric or "-" characters", Kaggle/kaggle-cli#321), 6 to 50 long; a long name keeps a hash of itself."""
    slug = slugify(name)
    if len(slug) > SLUG_MAX:
        slug = f"{slug[:SLUG_MAX - 9].rstrip('-')}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return slug if len(slug) >= SLUG_MIN else f"{slug}-data"


def members_slug(competition: str) -> str:
    """The one dataset that carries a competition's ensemble members trained off Kaggle (a new version per set)."""
    return dataset_slug(f"{competition}-members")


def weights_slug(arch: str) -> str:
    """The dataset that carries one architecture's pretrained weights (`<arch>.pth`) to offline kernels."""
    return dataset_slug(f"timm-weights-{arch}")


def dataset_metadata(owner: str, slug: str, license_name: str, description: str) -> dict:
    """dataset-metadata.json as the client reads it: id, a title (6 to 50 characters, unique among the owner's
    datasets: Kaggle/kaggle-cli#243), exactly one license, and a description."""
    return {"id": f"{owner}/{slug}", "title": slug, "licenses": [{"name": license_name}],
            "description": description}


def write_dataset(folder: Path, metadata: dict, files: dict[str, Path]) -> Path:
    """Lay out exactly what is uploaded: each file at its relative name (a link to it where the filesystem allows,
    else a copy) and dataset-metadata.json, swapped in whole."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name, source in files.items():
            _place(Path(source), staging / name)
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        swap_in(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)  # a model file can be large: the same bytes, not a second copy
    except OSError:
        shutil.copyfile(source, target)


def dataset_files(folder: Path) -> list[Path]:
    """The files of a laid-out dataset that are uploaded (its metadata file is not)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != METADATA_FILE)


def content_hash(folder: Path) -> str:
    """What the dataset holds, as one digest: every file's name and bytes. The same members or weights hash
    alike wherever they were laid out, so a dataset is never uploaded twice."""
    digest = hashlib.sha256()
    for path in dataset_files(folder):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + _file_digest(path).encode() + b"\n")
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_metadata(folder: Path) -> dict | None:
    """A laid-out dataset's metadata; None where `folder` is not one (a plain folder of datasets_root)."""
    try:
        return json.loads((folder / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return None
