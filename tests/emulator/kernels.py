"""Kaggle's kernels as the emulator keeps them: pushes validated like Kaggle's (slug and title rules, owner,
sources, session limits, weekly quota), versions counted per slug, sessions that run for real through the
local runner or follow a script, status, metadata, outputs and logs."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

from .model import ACTIVE, DENIED, MAX_TIMEOUT_S, NOT_FOUND, SLUG_RE, Fault, Version, iso_millis, log_chunks, slugify


class Kernels:
    """The kernel RPCs of KaggleEmulator (state.py holds the fields they use)."""

    def save_kernel(self, body: dict, fault: Fault | None) -> dict:
        owner, _, slug = body.get("slug", "").partition("/")
        if owner != self.username:
            return {"error": NOT_FOUND}
        if not (5 <= len(slug) <= 50 and SLUG_RE.match(slug)):
            return {"error": f"Invalid kernel slug '{slug}'"}
        if body.get("language") != "python" or body.get("kernelType") not in ("notebook", "script"):
            return {"error": "Invalid language or kernel type"}
        if int(body.get("sessionTimeoutSeconds", 0)) >= MAX_TIMEOUT_S:
            return {"error": f"sessionTimeoutSeconds must be lower than the global maximum ({MAX_TIMEOUT_S})"}
        with self.lock:
            kernel = self.kernels.get(slug)
            if kernel is not None and not kernel["versions"]:  # the empty kernel of a refused first push
                return {"error": NOT_FOUND}
            title = body.get("newTitle") or (kernel or {}).get("title")
            if kernel is None and (not title or slugify(title) != slug):
                return {"error": f"The title {title!r} does not resolve to the slug '{slug}'"}
            if kernel is None and (slug[0].isdigit() or not title.isascii()):
                return {"error": NOT_FOUND}  # as public push logs (2026) report; not in Kaggle's docs
            refusal = self._refusal(bool(body.get("enableGpu") or body.get("machineShape")), fault)
            if refusal:
                if kernel is None and self.shells:  # Kaggle made the kernel all the same, without a version
                    self.kernels[slug] = {"id": 1000 + len(self.kernels), "title": title, "versions": {}}
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
        self.refresh_quota()
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
        invalid = {"datasetDataSources": [ref for ref in body.get("datasetDataSources", [])
                                          if self.ready_version(ref) is None],
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
        if fault and fault.kind == "timeout_session":
            version.times_out = fault.options.get("log", f"starting {slug}\n")
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
                # A dataset is attached at its newest READY version (the link datasets.py keeps): a dataset still
                # being processed is not (what Kaggle does then is not documented; unconfirmed).
                "dataset_sources": ["/".join(ref.split("/")[:2]) for ref in body.get("datasetDataSources", [])
                                    if self.ready_version(ref) is not None],
                "kernel_sources": [self._local_ref(ref) for ref in body.get("kernelDataSources", [])]}
        (folder / "kernel-metadata.json").write_text(json.dumps(meta))
        try:
            timeout = int(body.get("sessionTimeoutSeconds") or MAX_TIMEOUT_S - 1)
            version.local = self.runner.push(folder, session_timeout_s=timeout).version
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
            if version.status == "COMPLETE" and version.times_out is not None:
                self._time_out(version)
            elif version.status == "COMPLETE":
                version.outputs = dict(self.scripted_outputs)
        return version

    def _time_out(self, version: Version) -> None:
        """A scripted session past its limit, as Kaggle ends one (backends/local/limits.py says where from):
        CANCEL_ACKNOWLEDGED, no failureMessage, no outputs, its log ending with nbclient's CellTimeoutError."""
        from toolkit.backends.local.limits import timeout_line

        seconds = int(version.meta.get("sessionTimeoutSeconds") or MAX_TIMEOUT_S)
        version.status, version.failure = "CANCEL_ACKNOWLEDGED", ""
        version.log = f"{version.times_out}{timeout_line(seconds)}\n"

    def _find(self, body: dict) -> tuple[str, Version] | None:
        slug = body.get("kernelSlug", "")
        if body.get("userName") != self.username or slug not in self.kernels or not self.kernels[slug]["versions"]:
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
        if not self.kernels[body["kernelSlug"]]["versions"]:  # an empty kernel: no session to speak of
            return 404, {"code": 404, "message": NOT_FOUND}
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
        source of the version asked for (the current one by default). An empty kernel (a refused first push
        left it) answers 500, as public push logs (2026) report."""
        kernel = self.kernels.get(body.get("kernelSlug", ""))
        if body.get("userName") == self.username and kernel is not None and not kernel["versions"]:
            return 500, {"code": 500, "message": "Internal error"}
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
                "lastRunTime": iso_millis(current.created), "totalVotes": 0}
            blob = {"source": version.meta.get("text", ""), "language": version.meta.get("language", "python"),
                    "kernelType": version.meta.get("kernelType", "notebook"), "slug": slug}
        return 200, {"metadata": metadata, "blob": blob}

    def delete_kernel(self, body: dict) -> tuple[int, dict]:
        """DeleteKernel (kaggle 2.2.5 kernels_delete): this user's kernel and every version of it go."""
        slug = body.get("kernelSlug", "")
        with self.lock:
            if body.get("userName") != self.username or slug not in self.kernels:
                return 403, dict(DENIED)
            del self.kernels[slug]
            self.deleted.append(slug)
        return 200, {}

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
        reply["log"] = log_chunks(self.log_of(slug, version))  # a running session's too, as far as it has got
        return 200, reply

    def log_of(self, slug: str, version: Version) -> str:
        if version.local is not None:
            return self.runner.logs(slug, version.local)
        return version.log if version.log is not None else \
            f"starting {slug}\nWarning: scripted session, nothing ran\nran {slug}\n"

    def log_source(self, owner: str, slug: str, label: str) -> tuple[str, Version] | None:
        """The version a log stream is about (the latest without a label), or None: not this user's kernel."""
        return self._find({"userName": owner, "kernelSlug": slug, "versionLabel": label})

    def running(self, slug: str, version: Version) -> bool:
        with self.lock:
            return self._refresh(slug, version).status in ACTIVE

    def download(self, path: str) -> bytes | None:
        parts = path.split("/", 4)  # "", "download", slug, version, name
        if len(parts) < 5 or parts[2] not in self.kernels:
            return None
        slug, version = parts[2], self.kernels[parts[2]]["versions"].get(int(parts[3]))
        if version is None:
            return None
        data = self.output_files(slug, version).get(unquote(parts[4]))
        return data.read_bytes() if isinstance(data, Path) else data
