"""A small emulator of Kaggle's public API, as the real kaggle 2.2.5 client speaks it, for tests.

Point the unmodified client at it with `emulator.client_env()` (KAGGLE_API_ENVIRONMENT=LOCALHOST and
HTTP_PROXY=http://127.0.0.1:PORT, set before kaggle is imported): every call then arrives as
absolute-form `POST http://localhost/api/v1/<Service>/<Method>` with a camelCase JSON body.

It keeps kernels, versions and sessions like Kaggle (versions count up per slug; status per
version), validates pushes like Kaggle (slug/title rules, owner, known sources, the batch GPU and
CPU session limits, the weekly GPU quota), answers 403 for kernels that are missing or not yours,
serves outputs from signed-looking URLs with Range support, returns logs in chunks, takes submissions
through StartSubmissionUpload + PUT + CreateSubmission (or CreateCodeSubmission), checks their
ids against the competition's sample_submission.csv and scores them against solution.csv.

Kernels either run for real through the local runner (run_kernels=True: the notebook executes in
a Kaggle-shaped sandbox) or follow a script (QUEUED -> RUNNING -> COMPLETE over a few status
polls, with outputs the test provides). Faults are injected on demand with `fail()`, and every
request is recorded in `requests` for assertions.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

SLUG_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
MAX_TIMEOUT_S = 12 * 3600
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
    kind: str  # 429 | 500 | 403 | drop | drop_after | truncate | slots_full | weekly_quota | error_session
    # drop: hang up before acting; drop_after: act (a SaveKernel makes its version), then hang up unanswered
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
    created: float = field(default_factory=time.time)


class KaggleEmulator:
    def __init__(self, workdir: Path, competitions_root: Path, username: str = "testuser", key: str = "",
                 run_kernels: bool = False, gpu_slots: int = 2, polls_to_complete: int = 2, input_layout: str = "current",
                 scripted_outputs: dict[str, bytes] | None = None):
        self.workdir = Path(workdir)
        self.competitions_root = Path(competitions_root)
        self.username, self.key = username, key
        self.run_kernels, self.gpu_slots, self.polls_to_complete = run_kernels, gpu_slots, polls_to_complete
        self.input_layout = input_layout  # "current" (input/competitions/<slug>, ...) or the older "flat" one
        self.scripted_outputs = dict(scripted_outputs or {})
        self.kernels: dict[str, dict] = {}  # slug -> {"id", "title", "versions": {n: Version}}
        self.uploads: dict[str, dict] = {}
        self.submissions: dict[int, dict] = {}
        self.gpu_seconds_used = 3600
        # GetAcceleratorQuotaStatistics' gpuQuota (kaggle 2.2.5 quota_view, kagglesdk 0.1.38 ApiAcceleratorQuota):
        # timeReserved is "Quota reserved by currently-running sessions".
        self.gpu_seconds_allowed = 30 * 3600
        self.gpu_seconds_reserved = 0
        self.cpu_slots = 5  # CPU kernels' own batch session limit (5 in public push logs)
        self.rules_unaccepted: set[str] = set()  # competitions whose data download answers 403 (rules not accepted)
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self._runner = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    # -- lifecycle and test helpers ------------------------------------------------------------

    def start(self) -> "KaggleEmulator":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def client_env(self) -> dict[str, str]:
        """What the real client needs to reach this server (set before kaggle is imported)."""
        proxy = f"http://127.0.0.1:{self.port}"
        return {"KAGGLE_API_ENVIRONMENT": "LOCALHOST", "HTTP_PROXY": proxy, "http_proxy": proxy,
                "NO_PROXY": "", "no_proxy": ""}

    def fail(self, target: str, kind: str, times: int = 1, **options: Any) -> None:
        with self.lock:
            self.faults.append(Fault(target, kind, times, options))

    def calls(self, rpc: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.rpc == rpc]

    def version(self, slug: str, number: int | None = None) -> Version:
        versions = self.kernels[slug]["versions"]
        return versions[number or max(versions)]

    @property
    def runner(self):
        """A LocalBackend in its own project whose competitions_root holds the test competitions."""
        if self._runner is None:
            from toolkit.backends.local import LocalBackend
            from toolkit.config import load_config

            project = self.workdir / "runner"
            project.mkdir(parents=True, exist_ok=True)
            (project / "toolkit.toml").write_text(
                f'competitions_root = "{self.competitions_root.resolve()}"\nconcurrency = 2\n'
                f'username = "{self.username}"\ninput_layout = "{self.input_layout}"\n')
            self._runner = LocalBackend(load_config(project, backend="local", concurrency=2))
        return self._runner

    # -- fault handling ----------------------------------------------------------------------

    def take_fault(self, target: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.target == target and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    # -- kernels -------------------------------------------------------------------------------

    def save_kernel(self, body: dict, fault: Fault | None) -> dict:
        owner, _, slug = body.get("slug", "").partition("/")
        if owner != self.username:
            return {"error": "Notebook not found"}
        if not (5 <= len(slug) <= 50 and SLUG_RE.match(slug)):
            return {"error": f"Invalid kernel slug '{slug}'"}
        if body.get("language") != "python" or body.get("kernelType") not in ("notebook", "script"):
            return {"error": "Invalid language or kernel type"}
        if int(body.get("sessionTimeoutSeconds", 0)) > MAX_TIMEOUT_S:
            return {"error": f"sessionTimeoutSeconds must be at most {MAX_TIMEOUT_S}"}
        with self.lock:
            kernel = self.kernels.get(slug)
            title = body.get("newTitle") or (kernel or {}).get("title")
            if kernel is None and (not title or slugify(title) != slug):
                return {"error": f"The title {title!r} does not resolve to the slug '{slug}'"}
            refusal = self._refusal(bool(body.get("enableGpu") or body.get("machineShape")), fault)
            if refusal:
                return {"error": refusal}
            invalid = self._invalid_sources(body)
            if kernel is None:
                kernel = self.kernels[slug] = {"id": 1000 + len(self.kernels), "title": title, "versions": {}}
            number = max(kernel["versions"], default=0) + 1
            version = kernel["versions"][number] = Version(number, body)
        self._start(slug, version, body, fault)
        return {"ref": f"/code/{owner}/{slug}", "url": f"https://www.kaggle.com/code/{owner}/{slug}",
                "versionNumber": number, "kernelId": kernel["id"], "error": None, "invalidTags": [],
                "invalidDatasetSources": invalid["datasetDataSources"],
                "invalidCompetitionSources": invalid["competitionDataSources"],
                "invalidKernelSources": invalid["kernelDataSources"],
                "invalidModelSources": invalid["modelDataSources"]}

    def _refusal(self, gpu: bool, fault: Fault | None) -> str:
        """SaveKernelResponse.error for a push over a limit, in Kaggle's words, or "". Wording: "Maximum batch
        GPU session count of 4 reached" (Kaggle/kaggle-cli#185); the CPU and weekly-quota lines as public push
        logs quote them ("Maximum weekly GPU quota of 30.00 hours reached." refuses GPU kernels only)."""
        kind = fault.kind if fault else ""
        if gpu and (kind == "weekly_quota" or self.gpu_seconds_used >= self.gpu_seconds_allowed):
            return f"Maximum weekly GPU quota of {self.gpu_seconds_allowed / 3600:.2f} hours reached."
        if gpu and (kind == "slots_full" or self._active(gpu=True) >= self.gpu_slots):
            return f"Maximum batch GPU session count of {self.gpu_slots} reached."
        if not gpu and (kind == "slots_full" or self._active(gpu=False) >= self.cpu_slots):
            return f"Maximum batch CPU session count of {self.cpu_slots} reached."
        return ""

    def _active(self, gpu: bool) -> int:
        """Queued or running sessions of GPU kernels (gpu=True) or of CPU kernels: each kind has its own limit."""
        count = 0
        for slug, kernel in self.kernels.items():
            for version in kernel["versions"].values():
                on_gpu = bool(version.meta.get("enableGpu") or version.meta.get("machineShape"))
                if on_gpu == gpu and self._refresh(slug, version).status in ACTIVE:
                    count += 1
        return count

    def _invalid_sources(self, body: dict) -> dict[str, list[str]]:
        invalid = {"datasetDataSources": list(body.get("datasetDataSources", [])),  # no datasets here
                   "modelDataSources": list(body.get("modelDataSources", [])),
                   "competitionDataSources": [c for c in body.get("competitionDataSources", [])
                                              if not (self.competitions_root / c / "sample_submission.csv").is_file()],
                   "kernelDataSources": []}
        for ref in body.get("kernelDataSources", []):
            parts = ref.split("/")
            kernel = self.kernels.get(parts[1]) if len(parts) > 1 and parts[0] == self.username else None
            number = int(parts[2]) if len(parts) > 2 else max((kernel or {}).get("versions", {}), default=None)
            if kernel is None or number not in kernel["versions"]:
                invalid["kernelDataSources"].append(ref)
        return invalid

    def _start(self, slug: str, version: Version, body: dict, fault: Fault | None) -> None:
        if fault and fault.kind == "error_session":
            version.status, version.failure = "ERROR", fault.options.get("message", "Kernel failed")
            return
        if body.get("kernelType") == "notebook":
            try:
                kernelspec = json.loads(body.get("text", "")).get("metadata", {}).get("kernelspec")
            except json.JSONDecodeError:
                kernelspec = None
            if not kernelspec:  # papermill on Kaggle fails this way (kaggle-api #689)
                version.status, version.failure = "ERROR", "No kernel name found in notebook"
                return
        if not self.run_kernels:
            return
        folder = self.workdir / "pushed" / slug / f"v{version.number}"
        folder.mkdir(parents=True)
        (folder / f"{slug}.ipynb").write_text(body.get("text", ""))
        meta = {"id": f"{self.username}/{slug}", "code_file": f"{slug}.ipynb",
                "enable_internet": bool(body.get("enableInternet", True)),  # off: the runner runs it offline
                "competition_sources": body.get("competitionDataSources", []),
                "kernel_sources": [self._local_ref(ref) for ref in body.get("kernelDataSources", [])]}
        (folder / "kernel-metadata.json").write_text(json.dumps(meta))
        try:
            version.local = self.runner.push(folder).version
        except Exception as exc:  # a source that cannot be mounted: the session fails, as on Kaggle
            version.status, version.failure = "ERROR", f"{type(exc).__name__}: {exc}"

    def _local_ref(self, ref: str) -> str:
        parts = ref.split("/")
        version = self.version(parts[1], int(parts[2]) if len(parts) > 2 else None)
        return f"{self.username}/{parts[1]}/{version.local}"

    def _refresh(self, slug: str, version: Version) -> Version:
        if version.status not in ACTIVE:
            return version
        if version.local is not None:
            state = self.runner.status(slug, version.local)
            version.status, version.failure = state.status.value, state.failure_message
        elif not self.run_kernels:
            step = version.polls
            version.status = "COMPLETE" if step >= self.polls_to_complete else ("RUNNING" if step else "QUEUED")
            if version.status == "COMPLETE":
                version.outputs = dict(self.scripted_outputs)
        return version

    def _find(self, body: dict) -> tuple[str, Version] | None:
        slug = body.get("kernelSlug", "")
        if body.get("userName") != self.username or slug not in self.kernels:
            return None
        label = body.get("versionLabel", "")
        number = int(label[1:]) if label.startswith("v") and label[1:].isdigit() else None
        if number is not None and number not in self.kernels[slug]["versions"]:
            return None
        return slug, self.version(slug, number)

    def _missing(self, body: dict) -> tuple[int, dict]:
        """The reply when _find finds nothing. A kernel that does not exist or is someone else's: 403 with
        the {code, message} body api.kaggle.com sends (Kaggle/kaggle-cli#1053 shows that shape), worded as
        kaggle 2.2.5 reports it ("Permission 'kernels.get' was denied"; Kaggle/kaggle-cli#548: a 403 can mean
        not found). A missing version of your own kernel: 404."""
        if body.get("userName") != self.username or body.get("kernelSlug", "") not in self.kernels:
            return 403, dict(DENIED)
        return 404, {"code": 404, "message": "Kernel version not found"}

    def kernel_status(self, body: dict) -> tuple[int, dict]:
        found = self._find(body)
        if found is None:
            return self._missing(body)
        slug, version = found
        with self.lock:
            version.polls += 1
            self._refresh(slug, version)
        reply = {"status": version.status}
        if version.failure:
            reply["failureMessage"] = version.failure
        return 200, reply

    def get_kernel(self, body: dict) -> tuple[int, dict]:
        """GetKernel (kernels_pull): the kernel's metadata, which speaks of its current version, and the
        source of the version asked for (the current one by default)."""
        found = self._find(body)
        if found is None:
            return self._missing(body)
        slug, version = found
        with self.lock:
            kernel, current = self.kernels[slug], self.version(slug)
            meta = current.meta
            metadata = {
                "id": kernel["id"], "ref": f"{self.username}/{slug}", "title": kernel["title"],
                "author": self.username, "slug": slug, "language": meta.get("language", "python"),
                "kernelType": meta.get("kernelType", "notebook"), "isPrivate": bool(meta.get("isPrivate", True)),
                "enableGpu": bool(meta.get("enableGpu")), "enableTpu": bool(meta.get("enableTpu")),
                "enableInternet": bool(meta.get("enableInternet", True)),
                "categoryIds": list(meta.get("categoryIds", [])),
                "datasetDataSources": list(meta.get("datasetDataSources", [])),
                "kernelDataSources": list(meta.get("kernelDataSources", [])),
                "competitionDataSources": list(meta.get("competitionDataSources", [])),
                "modelDataSources": list(meta.get("modelDataSources", [])),
                "currentVersionNumber": current.number,
                "dockerImage": "gcr.io/kaggle-gpu-images/python@sha256:0123abcd",
                "machineShape": meta.get("machineShape", ""),
                "lastRunTime": _iso_millis(current.created), "totalVotes": 0}
            blob = {"source": version.meta.get("text", ""), "language": version.meta.get("language", "python"),
                    "kernelType": version.meta.get("kernelType", "notebook"), "slug": slug}
        return 200, {"metadata": metadata, "blob": blob}

    def output_files(self, slug: str, version: Version) -> dict[str, Path | bytes]:
        if version.local is None:
            return dict(version.outputs) if version.status == "COMPLETE" else {}
        working = self.runner.kernels / slug / f"v{version.local}" / "working"
        if version.status not in ("COMPLETE", "ERROR") or not working.is_dir():
            return {}
        return {p.relative_to(working).as_posix(): p for p in sorted(working.rglob("*"))
                if p.is_file() and not p.is_symlink()}

    def list_output(self, body: dict) -> tuple[int, dict]:
        found = self._find(body)
        if found is None:
            return self._missing(body)
        slug, version = found
        with self.lock:
            self._refresh(slug, version)
        names = sorted(self.output_files(slug, version))
        size = min(int(body.get("pageSize") or 20), 200)
        start = int(body.get("pageToken") or 0)
        page = names[start:start + size]
        base = f"http://127.0.0.1:{self.port}/download/{slug}/{version.number}/"
        reply = {"files": [{"fileName": n, "url": base + n} for n in page],
                 "nextPageToken": str(start + size) if start + size < len(names) else ""}
        scripted = f"starting {slug}\nWarning: scripted session, nothing ran\nran {slug}\n"
        log = self.runner.logs(slug, version.local) if version.local is not None else scripted
        reply["log"] = _log_chunks(log)
        return 200, reply

    def download(self, path: str) -> bytes | None:
        parts = path.split("/", 4)  # "", "download", slug, version, name
        if len(parts) < 5 or parts[2] not in self.kernels:
            return None
        slug, version = parts[2], self.kernels[parts[2]]["versions"].get(int(parts[3]))
        if version is None:
            return None
        data = self.output_files(slug, version).get(unquote(parts[4]))
        return data.read_bytes() if isinstance(data, Path) else data

    # -- submissions ---------------------------------------------------------------------------

    def start_upload(self, body: dict) -> tuple[int, dict]:
        competition = body.get("competitionName", "")
        if not (self.competitions_root / competition / "sample_submission.csv").is_file():
            return 404, {"code": 404, "message": f"Competition {competition} not found"}
        token = uuid.uuid4().hex
        self.uploads[token] = {"competition": competition, "name": body.get("fileName"), "data": None}
        return 200, {"token": token, "createUrl": f"http://127.0.0.1:{self.port}/upload/{token}"}

    def create_submission(self, body: dict) -> tuple[int, dict]:
        competition = body.get("competitionName", "")
        upload = self.uploads.get(body.get("blobFileTokens", ""))
        if upload is None or upload["data"] is None or upload["competition"] != competition:
            return 400, {"code": 400, "message": "Invalid blob file token"}
        if (self.competitions_root / competition / "hidden_test").is_dir():
            # A code competition takes notebooks only: a CSV upload gets a bare 400 (Kaggle/kaggle-cli#400).
            return 400, {"code": 400, "message": "Bad Request"}
        ref = self._score(competition, upload["data"], body.get("submissionDescription", ""), upload["name"])
        return 200, {"message": f"Successfully submitted to {competition}", "ref": ref}

    def create_code_submission(self, body: dict) -> tuple[int, dict]:
        competition, slug = body.get("competitionName", ""), body.get("kernelSlug", "")
        if body.get("kernelOwner") != self.username or slug not in self.kernels:
            return 404, {"code": 404, "message": "Could not find provided notebook"}
        version = self.kernels[slug]["versions"].get(int(body.get("kernelVersion") or 0))
        if version is None or self._refresh(slug, version).status != "COMPLETE":
            return 400, {"code": 400, "message": "The notebook version has not run successfully"}
        if competition not in version.meta.get("competitionDataSources", []):
            return 400, {"code": 400, "message": "The notebook must have the competition as a data source"}
        if version.meta.get("enableInternet", True):
            return 400, {"code": 400, "message": "Internet must be disabled for code competition submissions"}
        if (self.competitions_root / competition / "hidden_test").is_dir():
            return self._start_rerun(competition, slug, version, body)
        data = self.output_files(slug, version).get(body.get("fileName", ""))
        data = data.read_bytes() if isinstance(data, Path) else data
        if data is None:
            return 400, {"code": 400, "message": f"The notebook did not write {body.get('fileName')}"}
        ref = self._score(competition, data, body.get("submissionDescription", ""), body.get("fileName"))
        return 200, {"message": f"Successfully submitted to {competition}", "ref": ref}

    def _start_rerun(self, competition: str, slug: str, version: Version, body: dict) -> tuple[int, dict]:
        """A code competition with a hidden test set: Kaggle reruns the submitted notebook version on it,
        internet off, with KAGGLE_IS_COMPETITION_RERUN set, and scores the file that rerun writes (fileName),
        the submission reading PENDING meanwhile (kaggle 2.2.5 competition_submit_code; Kaggle's code
        competition pages). The runner's LocalBackend does the rerun (toolkit/backends/rerun.py)."""
        if version.local is None:
            return 400, {"code": 400, "message": "emulator: a rerun needs kernels that ran (run_kernels=True)"}
        name = body.get("fileName") or "submission.csv"
        try:
            local = self.runner.submit(competition, Path(name), body.get("submissionDescription", ""),
                                       slug=slug, version=version.local)
        except Exception as exc:  # the runner refused (e.g. the version is gone): Kaggle answers 400
            return 400, {"code": 400, "message": str(exc)}
        entry = {"ref": 0, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "polls": 0,
                 "description": body.get("submissionDescription", ""), "fileName": name, "status": "PENDING",
                 "rerun": local.ref}
        return 200, {"message": f"Successfully submitted to {competition}", "ref": self._add(competition, entry)}

    def _add(self, competition: str, entry: dict) -> int:
        with self.lock:
            entry["ref"] = 50000 + len(self.submissions)
            entry["competition"] = competition
            self.submissions[entry["ref"]] = entry
        return entry["ref"]

    def _score(self, competition: str, data: bytes, description: str, name: str) -> int:
        folder = self.competitions_root / competition
        sample = _read_labels((folder / "sample_submission.csv").read_bytes())
        submitted = _read_labels(data)
        entry = {"ref": 0, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "description": description,
                 "fileName": name, "totalBytes": len(data), "status": "COMPLETE", "polls": 0}
        if submitted is None or set(submitted) != set(sample):
            entry.update(status="ERROR", errorDescription="Submission ids do not match the sample submission")
        elif (folder / "solution.csv").is_file():
            truth = _read_labels((folder / "solution.csv").read_bytes()) or {}
            entry["publicScore"] = f"{sum(submitted[k] == v for k, v in truth.items()) / len(truth):.5f}"
        return self._add(competition, entry)

    def get_submission(self, body: dict) -> tuple[int, dict]:
        entry = self.submissions.get(int(body.get("ref") or 0))
        if entry is None:
            return 404, {"code": 404, "message": "Submission not found"}
        return 200, self._public(entry)

    def _follow_rerun(self, entry: dict) -> None:
        """A rerun submission reads PENDING until its rerun has been scored, then COMPLETE with publicScore
        or ERROR with errorDescription (ApiSubmission's fields in kagglesdk 0.1.38; SubmissionStatus
        PENDING/COMPLETE/ERROR). Kaggle's errorDescription names the error class only ("Notebook Threw
        Exception", ...: Kaggle/kaggle-api#509); the runner's adds what the local rerun knows."""
        if entry.get("status") != "PENDING" or "rerun" not in entry:
            return
        result = self.runner.submission(entry["competition"], entry["rerun"])
        if result.status == "COMPLETE" and result.score is not None:
            entry["publicScore"] = f"{result.score:.5f}"
        elif result.status == "ERROR":
            entry["errorDescription"] = result.error
        entry["status"] = result.status

    def _public(self, entry: dict) -> dict:
        self._follow_rerun(entry)
        entry["polls"] += 1
        reply = {k: v for k, v in entry.items() if k not in ("polls", "competition", "rerun")}
        if entry["polls"] == 1:  # scoring takes a moment on Kaggle: the first look says PENDING
            reply = {k: v for k, v in reply.items() if k not in ("publicScore", "errorDescription")}
            reply["status"] = "PENDING"
        return reply

    def list_submissions(self, body: dict) -> tuple[int, dict]:
        competition = body.get("competitionName")
        subs = [self._public(e) for e in reversed(self.submissions.values()) if e["competition"] == competition]
        return 200, {"submissions": subs, "nextPageToken": ""}

    def quota(self) -> dict:
        return {"quotaRefreshTime": "2030-01-06T00:00:00Z",
                "gpuQuota": {"timeUsed": f"{self.gpu_seconds_used}s",
                             "timeReserved": f"{self.gpu_seconds_reserved}s",
                             "totalTimeAllowed": f"{self.gpu_seconds_allowed}s", "hasEverRun": True},
                "tpuQuota": {"timeUsed": "0s", "totalTimeAllowed": "72000s"}}

    # -- competition data ----------------------------------------------------------------------
    # Checked against kaggle 2.2.5 / kagglesdk 0.1.38: competition_download_cli(c) -> competition_download_files
    # -> CompetitionApiService/DownloadDataFiles {competitionName}, reply type HttpRedirect. requests follows the
    # 302 (as a GET, dropping Authorization on the new host, as for Kaggle's signed storage URL); the client names
    # the file <competition>.<extension of the final URL's path>, so that path ends in .zip.

    def download_data_files(self, body: dict) -> tuple[int, dict]:
        competition = body.get("competitionName", "")
        if competition in self.rules_unaccepted:
            return 403, {"code": 403, "message": RULES_NOT_ACCEPTED}
        if not SLUG_RE.match(competition) or not (self.competitions_root / competition).is_dir():
            return 404, {"code": 404, "message": f"Competition '{competition}' not found"}
        url = f"http://127.0.0.1:{self.port}/competition-data/{competition}/{competition}.zip?Expires=9999999999"
        return 302, {"url": url}

    def competition_zip(self, path: str) -> bytes | None:
        """The competition's public files as one zip: never solution.csv or hidden_test/ (kept from entrants).
        Fixed timestamps, so repeated requests (a resumed download) get the same bytes."""
        parts = path.split("/")  # "", "competition-data", slug, "<slug>.zip"
        if len(parts) != 4 or not SLUG_RE.match(parts[2]) or parts[3] != f"{parts[2]}.zip":
            return None
        folder = self.competitions_root / parts[2]
        if not folder.is_dir():
            return None
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(p for p in folder.rglob("*") if p.is_file()):
                name = file.relative_to(folder).as_posix()
                if name == "solution.csv" or name.startswith("hidden_test/") or "/." in f"/{name}":
                    continue
                archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), file.read_bytes())
        return buffer.getvalue()

    # -- routing -------------------------------------------------------------------------------

    def authorized(self, headers: Any) -> bool:
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, key = base64.b64decode(auth[6:]).decode().partition(":")
            return user == self.username and (not self.key or key == self.key)
        return False

    def rpc(self, method: str, body: dict, fault: Fault | None) -> tuple[int, dict]:
        simple = {"GetKernelSessionStatus": self.kernel_status, "ListKernelSessionOutput": self.list_output,
                  "GetKernel": self.get_kernel,
                  "StartSubmissionUpload": self.start_upload, "CreateSubmission": self.create_submission,
                  "CreateCodeSubmission": self.create_code_submission, "GetSubmission": self.get_submission,
                  "ListSubmissions": self.list_submissions, "DownloadDataFiles": self.download_data_files}
        if method == "SaveKernel":
            return 200, self.save_kernel(body, fault)
        if method in simple:
            return simple[method](body)
        if method == "GetAcceleratorQuotaStatistics":
            return 200, self.quota()
        if method == "GetSubmissionLimits":
            return 200, {"numToday": 1, "numAllowedNow": 4, "numTotal": len(self.submissions)}
        return 404, {"code": 404, "message": f"method {method} is not emulated"}


def _log_chunks(text: str) -> str:
    """A kernel log as Kaggle sends it: a JSON list of {stream_name, time, data} chunks, about one per line
    (kaggle 2.2.5 writes it to <slug>.log as is; its kernels_logs_stream docstring names the same fields)."""
    lines = text.splitlines(keepends=True)
    return json.dumps([{"stream_name": "stderr" if line.startswith(("Traceback", "Warning", "warning")) else "stdout",
                        "time": round(0.5 + 0.25 * i, 3), "data": line} for i, line in enumerate(lines)])


def _iso_millis(t: float) -> str:
    """Kaggle's timestamp format: UTC, milliseconds, a trailing Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def _read_labels(data: bytes) -> dict[str, str] | None:
    try:
        rows = list(csv.reader(io.StringIO(data.decode())))
    except (UnicodeDecodeError, csv.Error):
        return None
    if not rows or rows[0][:2] != ["image_id", "label"]:
        return None
    return {r[0]: r[1] for r in rows[1:] if len(r) >= 2}


def _handler(emulator: KaggleEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

        def _record(self, rpc: str, body: Any) -> None:
            with emulator.lock:
                emulator.requests.append(Recorded(self.command, self.path, rpc, dict(self.headers), body))

        def _reply(self, code: int, payload: Any = None, data: bytes | None = None,
                   headers: dict | None = None) -> None:
            body = data if data is not None else json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/octet-stream" if data is not None else "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _generic_fault(self, fault: Fault | None) -> bool:
            """Apply a transport-level fault; True when the request was answered (or dropped)."""
            if fault is None or fault.kind in ("slots_full", "weekly_quota", "error_session", "truncate",
                                               "drop_after"):
                return False
            if fault.kind == "drop":
                self._hang_up()
                return True
            if fault.kind == "hang":  # a connection that goes silent: nothing comes back for a long time
                time.sleep(fault.options.get("seconds", 5))
                self._hang_up()
                return True
            code = int(fault.kind)
            extra = {"Retry-After": str(fault.options.get("retry_after", 1))} if code == 429 else {}
            message = {429: "TooManyRequests", 403: DENIED["message"]}.get(code, "Internal error")
            self._reply(code, {"code": code, "message": message}, headers=extra)
            return True

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            match = re.fullmatch(r"/api/v1/([\w.]+)/(\w+)", path)
            raw = self._body()
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {"_raw": raw.decode(errors="replace")}
            method = match.group(2) if match else path
            self._record(method, body)
            fault = emulator.take_fault(method)
            if self._generic_fault(fault):
                return
            if not match:
                return self._reply(404, {"code": 404, "message": "not found"})
            if not emulator.authorized(self.headers):
                return self._reply(401, {"code": 401, "message": "Unauthenticated"})
            code, payload = emulator.rpc(method, body, fault)
            if fault is not None and fault.kind == "drop_after":  # done on the server; the reply is lost
                return self._hang_up()
            self._reply(code, payload, headers={"Location": payload["url"]} if code == 302 else None)

        def _hang_up(self) -> None:
            self.close_connection = True
            self.connection.shutdown(2)

        def do_PUT(self) -> None:
            path = urlsplit(self.path).path
            data = self._body()
            self._record("upload", data)
            if self._generic_fault(emulator.take_fault("upload")):
                return
            upload = emulator.uploads.get(path.rsplit("/", 1)[-1]) if path.startswith("/upload/") else None
            if upload is None:
                return self._reply(404, {"code": 404, "message": "upload not found"})
            upload["data"] = data
            self._reply(200, {})

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            self._record("download", None)
            fault = emulator.take_fault("download")
            if self._generic_fault(fault):
                return
            data = emulator.download(path) if path.startswith("/download/") else emulator.competition_zip(path)
            if data is None:
                return self._reply(404, {"code": 404, "message": "not found"})
            self._send_file(data, truncate=fault is not None and fault.kind == "truncate")

        def _send_file(self, data: bytes, truncate: bool) -> None:
            """Full or Range reply with the validators the client's resume logic needs."""
            etag = f'"{len(data)}-{hash(data) & 0xffffffff:x}"'
            start, status = 0, 200
            wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
            if_range = self.headers.get("If-Range")
            if wanted and (if_range is None or if_range == etag):
                start, status = int(wanted.group(1)), 206
                if start >= len(data):
                    return self._reply(416, {"code": 416, "message": "range not satisfiable"})
            chunk = data[start:]
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(chunk)))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", formatdate(time.time() - 60, usegmt=True))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if truncate:  # promise every byte, send half, hang up
                self.wfile.write(chunk[: len(chunk) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(chunk)

    return Handler


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
    import contextlib
    import os
    import sys
    import tempfile

    if _CLIENT_CONFIG_DIR is None:
        if "kaggle.api.kaggle_api_extended" in sys.modules:
            raise RuntimeError("kaggle was imported before the emulator tests could point it at a temp config")
        _CLIENT_CONFIG_DIR = Path(tempfile.mkdtemp(prefix="kaggle-config-"))
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
