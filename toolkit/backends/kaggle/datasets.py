"""Kaggle datasets through kaggle 2.2.5: a dataset's state (dataset_status in its json format, which asks
GetDatasetStatus and GetDataset), and a laid-out folder uploaded as a new private dataset or a new version of one
(dataset_create_new / dataset_create_version: every file a blob, StartBlobUpload and a PUT of its bytes to the signed
URL it answers, then CreateDataset or CreateDatasetVersion with the blobs' tokens). KaggleBackend's methods call these
with itself (its client, configuration and username)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

from toolkit.backends.base import DatasetState
from toolkit.backends.kaggle.errors import calling, http_code
from toolkit.backends.kaggle.replies import within
from toolkit.core.errors import DatasetRefused
from toolkit.kernel.datasets import dataset_files, read_metadata

# GetDatasetStatus answers a DatabundleVersionStatus (kagglesdk 0.1.38 dataset_enums), which the client returns by
# name in lower case: READY once kernels can attach it; FAILED or DELETED; any other (NOT_YET_PERSISTED,
# BLOBS_RECEIVED, BLOBS_DECOMPRESSED, BLOBS_COPIED_TO_SDS, INDIVIDUAL_BLOBS_COMPRESSED, REPROCESSING) while Kaggle
# processes the upload.
GONE = {"failed", "deleted"}
# The client sets no timeout; an upload is allowed the API's limit plus a second per MB (1 MB/s upstream at least).
UPLOAD_S_PER_MB = 1.0
# What Kaggle's refusals say and what to do about each (their words: the client's own check for a slug in use;
# "The requested title ... is already in use by a dataset", Kaggle/kaggle-cli#243 and #329; "The size of your files
# is N bytes, it exceeds the maximum of ...", Kaggle/kaggle-cli#424; "The file count exceeds the maximum of 1000",
# as whirlwide/candlestick_retriever#15 quotes it).
HINTS = (("already in use", "delete or rename your dataset of that slug or title on kaggle.com, then run the command "
                            "again"),
         ("exceeds the maximum", "fewer or smaller files: ensemble fewer members, or members with smaller models"),
         ("not allowed to create", "datasets are made under the account of these credentials: check `username`"))
# Refusals that come as a bare HTTP error once the files are up: "400 - Bad Request" when a kernel of the owner's
# has that slug (Kaggle/kaggle-cli#361); 403 for a new version while the dataset's first is still being processed
# ("you get a 403 if you try uploading a new version while the FIRST version is still being processed",
# Kaggle/kagglehub#182).
HTTP_REFUSALS = {400: "a kernel of yours with the same slug makes Kaggle answer so: rename or delete it on kaggle.com",
                 403: "Kaggle takes no new version while the dataset's first is being processed: run the command "
                      "again in a few minutes"}


def state(backend: Any, slug: str) -> DatasetState | None:
    """The dataset's newest version, or None when Kaggle has no such dataset of this account (404; the client's own
    dataset_create_new takes any HTTP error of this call to mean the slug is free, and a 403 is what a dataset
    that is not yours answers)."""
    ref = f"{backend.username}/{slug}"

    def lookup() -> Any:
        import requests

        try:
            return backend.api.dataset_status(ref, format="json(status,current_version_number)")
        except requests.HTTPError as exc:
            if http_code(exc) in (403, 404):
                return None
            raise

    raw = backend._read(f"the status of dataset {ref}", lookup)
    if raw is None:
        return None
    data = json.loads(raw)
    status, version = str(data.get("status") or "").lower(), data.get("current_version_number") or None
    kind = DatasetState.READY if status == "ready" else DatasetState.FAILED if status in GONE else DatasetState.PENDING
    return DatasetState(kind, int(version) if version else None)


def upload(backend: Any, folder: Path, new: bool, notes: str) -> None:
    """Upload `folder` (dataset-metadata.json, its files; each subfolder as one zip, dir_mode="zip"). Not retried
    here: a reply lost after Kaggle took it still made the dataset, and the next command finds it. The client
    prints its progress and retries (resuming an interrupted PUT); both stay inside."""
    ref = (read_metadata(folder) or {}).get("id", folder.name)
    size = sum(p.stat().st_size for p in dataset_files(folder))
    limit = backend.config.api_timeout_s + UPLOAD_S_PER_MB * size / 2**20
    what = f"uploading dataset {ref}"

    def create() -> Any:
        import requests

        try:
            if new:
                return backend.api.dataset_create_new(str(folder), public=not backend.config.private, quiet=True,
                                                      dir_mode="zip")
            return backend.api.dataset_create_version(str(folder), notes, quiet=True, dir_mode="zip")
        except requests.HTTPError as exc:
            if http_code(exc) in HTTP_REFUSALS:
                raise DatasetRefused(f"Kaggle refused dataset {ref} (HTTP {http_code(exc)})",
                                     HTTP_REFUSALS[http_code(exc)]) from None
            raise

    with calling(what), contextlib.redirect_stdout(io.StringIO()):
        reply = within(limit, what, create)
    error = _refusal(reply)
    if error:
        hint = next((h for words, h in HINTS if words in error), "nothing was attached: run the command again")
        raise DatasetRefused(f"Kaggle refused dataset {ref}: {error}", hint)


def _refusal(reply: Any) -> str:
    """Kaggle's words when it did not take the dataset ("" when it did): ApiCreateDatasetResponse's error, or a
    status other than "ok" (the client checks `status.lower() == "ok"` itself)."""
    if reply is None:
        return "no reply"
    error = " ".join(str(reply.error or "").split())
    if error:
        return error
    status = str(reply.status or "")
    return "" if status.lower() == "ok" else f"status {status or 'empty'}"
