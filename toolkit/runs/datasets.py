"""Datasets a kernel attaches, uploaded before the kernel is pushed: each laid-out folder (kernel.datasets) goes to
the backend once per content (its hash, kept in the registry with the version it became), as a new dataset or a new
version of it, and the push waits until the backend says it is ready to attach. Where the backend mounts this
machine's folders as they are (local, ray), there is nothing to upload."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from toolkit.backends.base import DatasetState
from toolkit.core.errors import DatasetRefused
from toolkit.core.poll import wait
from toolkit.kernel.datasets import content_hash, dataset_files, read_metadata
from toolkit.project import Project
from toolkit.registry.records import DatasetUpload

# A dataset Kaggle accepted may not be found for a while ("newly created versions may return 404 for several
# seconds", Kaggle/kaggle-cli#890); one over the private storage quota is accepted and then never appears
# (Kaggle/kaggle-cli#284). After this long without it, the second is the likelier.
APPEAR_S = 300.0


@dataclass(frozen=True)
class Published:
    """A dataset as a kernel attaches it: its ref, version, and whether this command uploaded it."""

    ref: str
    upload: DatasetUpload
    uploaded: bool


def attached(project: Project, folders: list[Path]) -> list[Path]:
    """The laid-out dataset folders the kernels in `folders` attach (their kernel-metadata's dataset_sources that
    are folders of datasets_root holding a dataset-metadata.json), each once."""
    root = project.config.resolve(project.config.datasets_root)
    found: dict[Path, None] = {}
    for folder in folders:
        meta = json.loads((Path(folder) / "kernel-metadata.json").read_text())
        for ref in meta.get("dataset_sources", []):
            candidate = root / ref.split("/")[1]
            if read_metadata(candidate) is not None:
                found[candidate] = None
    return list(found)


def publish_all(project: Project, folders: list[Path], note: Callable[[str], None]) -> list[Published]:
    """Upload what the kernels in `folders` attach, where the backend uploads datasets; `note` hears progress."""
    if not project.backend_type.uploads_datasets:
        return []
    return [publish(project, folder, note) for folder in attached(project, folders)]


def publish(project: Project, folder: Path, note: Callable[[str], None]) -> Published:
    """The dataset in `folder` ready on the backend: nothing uploaded when the registry says this content is its
    current version there; else uploaded (new, or a new version) and waited for."""
    ref = read_metadata(folder)["id"]
    slug, digest = ref.split("/")[1], content_hash(folder)
    last = project.store.latest_dataset(project.config.backend, ref)
    current = project.backend.dataset(slug)
    if _uploaded(last, digest, current):
        if last.version is not None:  # this very content is the version the backend has
            return Published(ref, last, False)
        return Published(ref, _ready(project, last, slug, note), True)  # a command cut off after uploading it
    if current is not None and current.status == DatasetState.PENDING:
        # Kaggle refuses a new version while the first is being processed (Kaggle/kagglehub#182): wait for it.
        _until_settled(project, ref, slug, note)
    return Published(ref, _upload(project, folder, ref, digest, current, note), True)


def _uploaded(last: DatasetUpload | None, digest: str, current: DatasetState | None) -> bool:
    """Whether the registry's last upload of the dataset is this content and the backend still has it (as the
    version recorded, or being processed after a command was cut off)."""
    if last is None or current is None or last.content_hash != digest:
        return False
    if last.version is None:
        return current.status != DatasetState.FAILED
    return current.status == DatasetState.READY and current.version == last.version


def _upload(project: Project, folder: Path, ref: str, digest: str, current: DatasetState | None,
            note: Callable[[str], None]) -> DatasetUpload:
    """Upload the folder (a new dataset, or a new version of `current`), record it, and wait until it is ready."""
    files = dataset_files(folder)
    size = sum(p.stat().st_size for p in files)
    note(f"uploading {ref}: {len(files)} file{'s' if len(files) != 1 else ''}, {_mb(size)}")
    project.backend.upload_dataset(folder, new=current is None, notes=f"content {digest[:12]}")
    upload = project.store.add_dataset(project.config.backend, ref, digest, len(files), size)
    return _ready(project, upload, ref.split("/")[1], note, current.version if current else None)


def _ready(project: Project, upload: DatasetUpload, slug: str, note: Callable[[str], None],
           before: int | None = None) -> DatasetUpload:
    """Wait until the backend has processed the upload (a version newer than `before`, the one it replaces), then
    record the version it became."""
    state = _until_settled(project, upload.ref, slug, note, since=upload.uploaded_at, before=before)
    if state.status != DatasetState.READY:
        raise DatasetRefused(f"Kaggle could not process dataset {upload.ref} (its status: failed)",
                             "look at the dataset on kaggle.com; run the command again to upload it anew")
    return project.store.dataset_ready(upload.id, state.version)


def _until_settled(project: Project, ref: str, slug: str, note: Callable[[str], None],
                   since: float | None = None, before: int | None = None) -> DatasetState | None:
    """Poll the dataset until it is READY or FAILED (as a version newer than `before`). One that stays missing (or
    at its old version) for APPEAR_S after an upload was dropped by Kaggle: one line saying so."""
    start = since or time.time()
    initial, maximum = project.poll_intervals

    def missing(state: DatasetState | None) -> bool:
        return state is None or bool(before and state.version and state.version <= before)

    def check() -> DatasetState | None:
        state = project.backend.dataset(slug)
        if since is not None and missing(state) and time.time() - start > APPEAR_S:
            raise DatasetRefused(f"Kaggle accepted dataset {ref} but it has not appeared after {APPEAR_S:.0f} s",
                                 "a private dataset past your private storage quota is dropped without a word "
                                 "(Kaggle/kaggle-cli#284): delete private datasets you no longer need on kaggle.com")
        note(f"{ref}: Kaggle is processing it ({time.time() - start:.0f} s)")
        return state

    return wait(check, lambda s: not missing(s) and s.status != DatasetState.PENDING,
                timeout_s=project.config.wait_timeout_s, initial_s=min(initial, 5.0), max_s=maximum)


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"
