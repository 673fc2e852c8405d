"""Kaggle's datasets as the emulator keeps them, through the calls kaggle 2.2.5 makes: StartBlobUpload (each file a
blob, its bytes PUT to the signed URL it answers), CreateDataset and CreateDatasetVersion (the blobs' tokens),
GetDatasetStatus and GetDataset (dataset_status's json format asks both). A version is processed over a few status
polls, then READY: its files kept, each zip unpacked into a folder of its name, and mounted where the local runner
finds it, so a kernel that attaches the dataset sees it where Kaggle mounts it. Refusals in Kaggle's words where a
public source quotes them (each named below); the others are the emulator's own."""

from __future__ import annotations

import io
import os
import shutil
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .model import SLUG_RE

# Licenses Kaggle takes by name (Kaggle/kaggle-cli docs/datasets_metadata.md).
LICENSES = {"CC0-1.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "CC-BY-NC-SA-4.0", "GPL-2.0", "ODbL-1.0", "DbCL-1.0",
            "copyright-authors", "other", "unknown", "CC-BY-4.0", "CC-BY-NC-4.0", "PDDL", "CC-BY-3.0", "apache-2.0",
            "GPL-3.0", "LGPL-3.0", "AGPL-3.0", "CC-BY-ND-4.0", "CC-BY-NC-ND-4.0", "ODC-BY-1.0", "FDL-1.3"}
# "Dataset creation error: You are not allowed to create a dataset as this owner." (Kaggle/kaggle-cli#25)
NOT_OWNER = "You are not allowed to create a dataset as this owner."
# "Dataset creation error: Slug can only contain alphanumeric or "-" characters" (Kaggle/kaggle-cli#321, #485)
BAD_SLUG = 'Slug can only contain alphanumeric or "-" characters'
# A version of a dataset that does not exist: "Failed to resolve the necessary information from the request."
# ("this error generally means that you were trying to create a new version of a dataset that doesn't already
# exist", a maintainer in Kaggle/kaggle-cli#373)
NO_SUCH_DATASET = "Failed to resolve the necessary information from the request."
MAX_FILES = 1000  # "The file count exceeds the maximum of 1000" (as whirlwide/candlestick_retriever#15 quotes it)
# Processing states GetDatasetStatus answers before READY (kagglesdk 0.1.38 DatabundleVersionStatus).
PROCESSING = ("NOT_YET_PERSISTED", "BLOBS_RECEIVED", "BLOBS_DECOMPRESSED", "BLOBS_COPIED_TO_SDS")


@dataclass
class DatasetVersion:
    number: int
    files: dict[str, bytes]
    notes: str = ""
    polls: int = 0
    status: str = "NOT_YET_PERSISTED"
    folder: Path | None = None  # where its files are, once READY


@dataclass
class Dataset:
    id: int
    owner: str
    slug: str
    title: str
    private: bool
    license: str
    versions: list[DatasetVersion] = field(default_factory=list)
    hidden_polls: int = 0  # status calls still to answer 404 ("may return 404 for several seconds": kaggle-cli#890)
    dropped: bool = False  # accepted over the private quota, never to appear (Kaggle/kaggle-cli#284)


class Datasets:
    """The dataset RPCs of KaggleEmulator (state.py holds the fields they use: datasets, uploads, the limits)."""

    def start_blob_upload(self, body: dict) -> tuple[int, dict]:
        """StartBlobUpload (kaggle 2.2.5 _upload_blob): a token and a signed URL to PUT the file's bytes to."""
        if body.get("type") != "DATASET":
            return 400, {"code": 400, "message": f"blob type {body.get('type')!r} is not emulated"}
        token = uuid.uuid4().hex
        self.uploads[token] = {"competition": None, "name": body.get("name", ""), "data": None,
                               "length": int(body.get("contentLength") or 0)}
        return 200, {"token": token, "createUrl": f"http://127.0.0.1:{self.port}/upload/{token}"}

    def _files(self, body: dict) -> dict[str, bytes] | tuple[int, dict]:
        """The uploaded blobs the request's files name, by file name; an error reply for a token never uploaded."""
        files = {}
        for entry in body.get("files") or []:
            upload = self.uploads.get(entry.get("token", ""))
            if upload is None or upload.get("competition") is not None or upload["data"] is None:
                return 400, {"code": 400, "message": "Invalid blob file token"}  # the emulator's wording
            files[upload["name"]] = upload["data"]
        return files

    def _too_big(self, files: dict[str, bytes]) -> str:
        """Kaggle's refusal of a version's size or file count (its words: Kaggle/kaggle-cli#424 quotes "The size of
        your files is N bytes, it exceeds the maximum of ..." (the end of the sentence is the emulator's); the file
        count as above), or ""."""
        size = sum(len(d) for d in files.values())
        if size > self.dataset_max_bytes:
            return f"The size of your files is {size} bytes, it exceeds the maximum of {self.dataset_max_bytes} bytes."
        if len(files) > MAX_FILES:
            return f"The file count exceeds the maximum of {MAX_FILES}"
        return ""

    def create_dataset(self, body: dict) -> tuple[int, dict]:
        owner, slug, title = body.get("ownerSlug", ""), body.get("slug", ""), body.get("title", "")
        if owner != self.username:
            return 200, {"status": "Error", "error": NOT_OWNER}
        if not SLUG_RE.match(slug):
            return 200, {"status": "Error", "error": BAD_SLUG}
        if slug in self.kernels:  # a kernel of that name: "400 - Bad Request" after the upload (kaggle-cli#361)
            return 400, {"code": 400, "message": "Bad Request"}
        taken = [d for d in self.datasets.values() if d.owner == owner and (d.slug == slug or d.title == title)]
        if taken:  # Kaggle/kaggle-cli#243 and #329 quote it
            return 200, {"status": "Error", "error": f'The requested title "{title}" is already in use by a '
                                                     "dataset. Please choose another title."}
        if body.get("licenseName") not in LICENSES:
            return 200, {"status": "Error", "error": f"Unknown license {body.get('licenseName')!r}"}  # its own words
        files = self._files(body)
        if isinstance(files, tuple):
            return files
        refusal = self._too_big(files)
        if refusal:
            return 200, {"status": "Error", "error": refusal}
        private = bool(body.get("isPrivate", False))  # the client leaves it out (False) for a public one
        dataset = Dataset(2000 + next(self.dataset_ids), owner, slug, title, private, body["licenseName"],
                          hidden_polls=self.dataset_hidden_polls)
        used = sum(len(b) for d in self.datasets.values() if d.private for v in d.versions for b in v.files.values())
        dataset.dropped = private and used + sum(len(b) for b in files.values()) > self.private_quota_bytes
        dataset.versions.append(DatasetVersion(1, files, "Initial release"))
        with self.lock:
            self.datasets[(owner, slug)] = dataset
        return 200, {"ref": f"{owner}/{slug}", "url": f"https://www.kaggle.com/datasets/{owner}/{slug}",
                     "status": "Ok", "invalidTags": []}

    def create_dataset_version(self, body: dict) -> tuple[int, dict]:
        dataset = self.datasets.get((body.get("ownerSlug", ""), body.get("datasetSlug", "")))
        if dataset is None or dataset.dropped or dataset.owner != self.username:
            return 200, {"status": "Error", "error": NO_SUCH_DATASET}
        if len(dataset.versions) == 1 and dataset.versions[0].status != "READY":
            # "you get a 403 if you try uploading a new version while the FIRST version is still being processed"
            # (Kaggle/kagglehub#182); the message is the emulator's own.
            return 403, {"code": 403, "message": "The dataset's first version is still being processed"}
        request = body.get("body") or {}
        files = self._files(request)
        if isinstance(files, tuple):
            return files
        refusal = self._too_big(files)
        if refusal:
            return 200, {"status": "Error", "error": refusal}
        with self.lock:
            dataset.versions.append(DatasetVersion(len(dataset.versions) + 1, files, request.get("versionNotes", "")))
        return 200, {"ref": f"{dataset.owner}/{dataset.slug}", "url": f"https://www.kaggle.com/datasets/"
                     f"{dataset.owner}/{dataset.slug}", "status": "Ok", "invalidTags": []}

    def _visible(self, body: dict) -> Dataset | tuple[int, dict]:
        """The dataset a status call names, or the reply for one the caller may not see: 404 for none (or one not
        yet found after its creation), 403 for someone else's private one."""
        dataset = self.datasets.get((body.get("ownerSlug", ""), body.get("datasetSlug", "")))
        if dataset is None or dataset.dropped:
            return 404, {"code": 404, "message": "Dataset not found"}
        if dataset.private and dataset.owner != self.username:
            return 403, {"code": 403, "message": "Permission 'datasets.get' was denied"}
        if dataset.hidden_polls > 0:
            dataset.hidden_polls -= 1
            return 404, {"code": 404, "message": "Dataset not found"}
        return dataset

    def dataset_status(self, body: dict) -> tuple[int, dict]:
        """GetDatasetStatus: its newest version's DatabundleVersionStatus; a version is READY after
        `dataset_polls_to_ready` polls of it (processing blobs takes Kaggle a while)."""
        with self.lock:
            found = self._visible(body)
            if isinstance(found, tuple):
                return found
            version = found.versions[-1]
            version.polls += 1
            if version.status not in ("READY", "FAILED") and version.polls > self.dataset_polls_to_ready:
                self._make_ready(found, version)
            elif version.status not in ("READY", "FAILED"):
                version.status = PROCESSING[min(version.polls, len(PROCESSING) - 1)]
        return 200, {"status": version.status}

    def get_dataset(self, body: dict) -> tuple[int, dict]:
        """GetDataset: ApiDataset's fields the client reads (currentVersionNumber) and isPrivate."""
        found = self._visible(body)
        if isinstance(found, tuple):
            return found
        return 200, {"id": found.id, "ref": f"{found.owner}/{found.slug}", "title": found.title,
                     "isPrivate": found.private, "currentVersionNumber": found.versions[-1].number,
                     "ownerRef": found.owner, "licenseName": found.license}

    def _make_ready(self, dataset: Dataset, version: DatasetVersion) -> None:
        """The version's files as kernels see them (each zip unpacked into a folder of its name: "the same file
        hierarchy after the archives are automatically uncompressed", Kaggle/kaggle-cli#111), then mounted."""
        folder = self.workdir / "datasets" / "versions" / str(dataset.id) / f"v{version.number}"
        folder.mkdir(parents=True)
        for name, data in version.files.items():
            if name.endswith(".zip"):
                zipfile.ZipFile(io.BytesIO(data)).extractall(folder / name[:-4])
            else:
                (folder / name).write_bytes(data)
        version.status, version.folder = "READY", folder
        self._mount(dataset, folder)

    def _mount(self, dataset: Dataset, folder: Path) -> None:
        """The runner finds `owner/slug` at datasets_root/<slug>: a link to the newest READY version, resolved when a
        kernel is pushed, so a session (and its code competition rerun) keeps the version it started with."""
        link = self.datasets_root / dataset.slug
        link.parent.mkdir(parents=True, exist_ok=True)
        staging = link.with_name(f".{dataset.slug}.{time.time_ns()}")
        staging.symlink_to(folder, target_is_directory=True)
        os.replace(staging, link)

    def ready_version(self, ref: str) -> DatasetVersion | None:
        """The newest READY version of dataset `owner/slug[/version]` the user may attach, or None."""
        owner, slug = (ref.split("/") + [""])[:2]
        dataset = self.datasets.get((owner, slug))
        if dataset is None or dataset.dropped or (dataset.private and owner != self.username):
            return None
        return next((v for v in reversed(dataset.versions) if v.status == "READY"), None)

    def dataset_bytes(self, owner: str, slug: str) -> dict[str, bytes]:
        """Test helper: the newest version's files as uploaded."""
        return dict(self.datasets[(owner, slug)].versions[-1].files)

    def forget_datasets(self) -> None:
        """Test helper: every dataset deleted on kaggle.com."""
        with self.lock:
            self.datasets.clear()
        shutil.rmtree(self.datasets_root, ignore_errors=True)
