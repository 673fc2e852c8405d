"""The emulator's records: what a request, an injected fault and a kernel version are, Kaggle's limits and
wording, and the formats Kaggle sends (log chunks, timestamps) or reads (label CSVs)."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

SLUG_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
# Competition slugs as Kaggle's URLs hold them: mixed case in older ones (GiveMeSomeCredit, kaggle-cli#144).
COMPETITION_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
# "must be lower than the global maximum" (kagglesdk 0.1.38 ApiSaveKernelRequest.session_timeout_seconds); the
# maximum is 12 h for CPU and GPU sessions. The refusal's wording is the emulator's own.
MAX_TIMEOUT_S = 12 * 3600
# What Kaggle answers a push to a slug it cannot version (kaggle-cli#545, #575), and, public push logs (2026)
# report, to the slug of the empty kernel a refused first push leaves, until that kernel is deleted.
NOT_FOUND = "Notebook not found"
ACTIVE = ("QUEUED", "RUNNING")
DENIED = {"code": 403, "message": "Permission 'kernels.get' was denied"}  # see KaggleEmulator._missing
# Kaggle's 403 for a competition download before its rules are accepted (as kaggle-cli#152 and mle-bench#29 quote it).
RULES_NOT_ACCEPTED = "You must accept this competition's rules before you'll be able to download files."


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass
class Recorded:
    method: str
    path: str
    rpc: str  # the RPC method name, "download" or "upload"
    headers: dict[str, str]
    body: Any  # parsed JSON for RPCs, raw bytes for uploads


@dataclass
class Fault:
    target: str  # RPC method name, "download" or "upload"
    kind: str  # 429 | 500 | 403 | drop | drop_after | truncate | slots_full | weekly_quota | error_session | expired
    #            | timeout_session
    # drop: hang up before acting; drop_after: act (a SaveKernel makes its version), then hang up unanswered;
    # timeout_session: a scripted session that runs past its limit (options: log, what it printed before)
    times: int = 1
    options: dict = field(default_factory=dict)


@dataclass
class Version:
    number: int
    meta: dict  # the SaveKernel request
    status: str = "QUEUED"
    failure: str = ""
    polls: int = 0
    local: int | None = None  # version in the local runner, when it runs for real
    outputs: dict[str, bytes] = field(default_factory=dict)  # scripted outputs
    log: str | None = None  # a scripted session's log so far (None: a fixed line or two)
    times_out: str | None = None  # a scripted session that runs past its limit: its log before the timeout line
    created: float = field(default_factory=time.time)



def log_chunks(text: str) -> str:
    """A kernel log as Kaggle sends it: a JSON list of {stream_name, time, data} chunks, about one per line
    (kaggle 2.2.5 writes it to <slug>.log as is; its kernels_logs_stream docstring names the same fields)."""
    lines = text.splitlines(keepends=True)
    return json.dumps([{"stream_name": "stderr" if line.startswith(("Traceback", "Warning", "warning")) else "stdout",
                        "time": round(0.5 + 0.25 * i, 3), "data": line} for i, line in enumerate(lines)])


def iso_millis(t: float) -> str:
    """Kaggle's timestamp format: UTC, milliseconds, a trailing Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def read_labels(data: bytes) -> dict[str, str] | None:
    try:
        rows = list(csv.reader(io.StringIO(data.decode())))
    except (UnicodeDecodeError, csv.Error):
        return None
    if not rows or rows[0][:2] != ["image_id", "label"]:
        return None
    return {r[0]: r[1] for r in rows[1:] if len(r) >= 2}

