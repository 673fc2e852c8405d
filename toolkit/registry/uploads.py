"""The registry's datasets table, the part of Store that records datasets uploaded for kernels: the content uploaded
to each (its hash), and the version the backend made of it. Store inherits it: one owner of every change."""

from __future__ import annotations

import sqlite3
import time
from contextlib import AbstractContextManager
from typing import Callable

from toolkit.registry.records import DatasetUpload


class Uploads:
    _transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]
    _query: Callable[..., list[sqlite3.Row]]

    def add_dataset(self, backend: str, ref: str, content_hash: str, files: int, size: int) -> DatasetUpload:
        """Record content just uploaded to dataset `ref` (its version comes with dataset_ready)."""
        with self._transaction() as db:
            row_id = db.execute("INSERT INTO datasets (backend, ref, content_hash, files, bytes, uploaded_at)"
                                " VALUES (?, ?, ?, ?, ?, ?)", (backend, ref, content_hash, files, size,
                                                               time.time())).lastrowid
        return self._dataset(row_id)

    def dataset_ready(self, upload_id: int, version: int | None) -> DatasetUpload:
        """The backend has processed that upload, as version `version`."""
        with self._transaction() as db:
            db.execute("UPDATE datasets SET version = ?, ready_at = ? WHERE id = ?", (version, time.time(), upload_id))
        return self._dataset(upload_id)

    def latest_dataset(self, backend: str, ref: str) -> DatasetUpload | None:
        """The last content uploaded to dataset `ref` on that backend, or None."""
        rows = self._query("SELECT * FROM datasets WHERE backend = ? AND ref = ? ORDER BY id DESC LIMIT 1",
                           (backend, ref))
        return DatasetUpload(**dict(rows[0])) if rows else None

    def _dataset(self, upload_id: int) -> DatasetUpload:
        return DatasetUpload(**dict(self._query("SELECT * FROM datasets WHERE id = ?", (upload_id,))[0]))
