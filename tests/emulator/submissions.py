"""Kaggle's submissions and competition data as the emulator keeps them: uploads, file and code submissions
(a code competition's rerun through the local runner), scoring against solution.csv, the GPU quota, and the
competition download."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from pathlib import Path

from .model import COMPETITION_RE, RULES_NOT_ACCEPTED, Version, read_labels


class Submissions:
    """The submission, quota and competition-data RPCs of KaggleEmulator (state.py holds their fields)."""

    def start_upload(self, body: dict) -> tuple[int, dict]:
        competition = body.get("competitionName", "")
        if not (self.competitions_root / competition / "sample_submission.csv").is_file():
            return 404, {"code": 404, "message": f"Competition {competition} not found"}
        token = uuid.uuid4().hex
        self.uploads[token] = {"competition": competition, "name": body.get("fileName"), "data": None}
        return 200, {"token": token, "createUrl": f"http://127.0.0.1:{self.port}/upload/{token}"}

    # -- the daily allowance ------------------------------------------------------------------------

    def _counts(self, competition: str) -> tuple[int, int]:
        """Valid submissions to `competition` since 00:00 UTC, and in all: one that ended in ERROR does not count
        (kagglesdk 0.1.38 ApiSubmissionLimits counts "valid submissions"; a public 2026 log saw a submission
        accepted the same UTC day as an ERROR one under a daily allowance of 1)."""
        day = time.strftime("%Y-%m-%d", time.gmtime())
        valid = [e for e in self.submissions.values() if e["competition"] == competition and e["status"] != "ERROR"]
        return sum(e["date"].startswith(day) for e in valid), len(valid)

    def submission_limits(self, body: dict) -> tuple[int, dict]:
        """GetSubmissionLimits (kaggle 2.2.5 competition_get_submission_limits): ApiSubmissionLimits' fields."""
        today, total = self._counts(body.get("competitionName", ""))
        return 200, {"numToday": today, "numTotal": total, "numAllowedNow": max(0, self.daily_submissions - today)}

    def _over_allowance(self, competition: str) -> tuple[int, dict] | None:
        """The refusal of a submission past the daily allowance, as public 2026 scripts quote Kaggle's: HTTP 400
        with a Google-style {"error": {...}} body (the client's raise_for_status shows only "400 Client Error")
        whose message reads "Submission not allowed: Your team has used its daily Submission allowance (N)
        today" and says when to try again."""
        if self._counts(competition)[0] < self.daily_submissions:
            return None
        hours = (86400 - time.time() % 86400) / 3600
        return 400, {"error": {"code": 400, "message": (
            f"Submission not allowed: Your team has used its daily Submission allowance ({self.daily_submissions}) "
            f"today, please try again tomorrow UTC ({hours:.1f} hours from now).")}}

    # -- submissions ---------------------------------------------------------------------------------

    def create_submission(self, body: dict) -> tuple[int, dict]:
        competition = body.get("competitionName", "")
        upload = self.uploads.get(body.get("blobFileTokens", ""))
        if upload is None or upload["data"] is None or upload["competition"] != competition:
            return 400, {"code": 400, "message": "Invalid blob file token"}
        refused = self._over_allowance(competition)
        if refused is not None:
            return refused
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
        refused = self._over_allowance(competition)
        if refused is not None:
            return refused
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
        competition pages). The runner's LocalBackend does the rerun (toolkit/backends/local/rerun.py)."""
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
        sample = read_labels((folder / "sample_submission.csv").read_bytes())
        submitted = read_labels(data)
        entry = {"ref": 0, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "description": description,
                 "fileName": name, "totalBytes": len(data), "status": "COMPLETE", "polls": 0}
        if submitted is None or set(submitted) != set(sample):
            entry.update(status="ERROR", errorDescription="Submission ids do not match the sample submission")
        elif (folder / "solution.csv").is_file():
            truth = read_labels((folder / "solution.csv").read_bytes()) or {}
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

    def refresh_quota(self) -> None:
        """Kaggle's weekly reset, once its time has come: the used time back to zero, the next reset a week on."""
        while time.time() >= self.quota_refresh_at:
            self.gpu_seconds_used = 0
            self.quota_refresh_at += 7 * 24 * 3600

    def quota(self) -> dict:
        self.refresh_quota()
        refresh = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.quota_refresh_at))
        return {"quotaRefreshTime": refresh,
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
        if not COMPETITION_RE.match(competition) or not (self.competitions_root / competition).is_dir():
            return 404, {"code": 404, "message": f"Competition '{competition}' not found"}
        url = f"http://127.0.0.1:{self.port}/competition-data/{competition}/{competition}.zip?Expires=9999999999"
        return 302, {"url": url}

    def list_data_tree(self, body: dict) -> tuple[int, dict]:
        """ListDataTreeFiles (kagglesdk ApiListDataTreeFilesRequest -> ApiDirectoryContent): the folders and
        files at `path` in the competition's public data, `pageSize` entries a page (files first: in what order
        Kaggle pages them is not said) with a nextPageToken while more follow."""
        competition, path = body.get("competitionName", ""), body.get("path", "").strip("/")
        folder = self.competitions_root / competition / path
        if not COMPETITION_RE.match(competition) or ".." in path.split("/") or not folder.is_dir():
            return 404, {"code": 404, "message": f"Competition '{competition}' has no folder '{path}'"}
        shown = sorted((p for p in folder.iterdir() if not p.name.startswith(".")
                        and (path or p.name not in ("solution.csv", "hidden_test"))),
                       key=lambda p: (p.is_dir(), p.name))
        start, size = int(body.get("pageToken") or 0), int(body.get("pageSize") or 20)
        page = shown[start:start + size]
        directories = [{"name": p.name, "totalFiles": sum(1 for f in p.rglob("*") if f.is_file())}
                       for p in page if p.is_dir()]
        files = [{"name": p.name, "totalBytes": p.stat().st_size} for p in page if p.is_file()]
        return 200, {"directories": directories, "files": files, "totalDirectories": sum(p.is_dir() for p in shown),
                     "totalFiles": sum(p.is_file() for p in shown), "totalChildren": len(shown),
                     "nextPageToken": str(start + size) if start + size < len(shown) else ""}

    def competition_zip(self, path: str) -> bytes | None:
        """The competition's public files as one zip: never solution.csv or hidden_test/ (kept from entrants).
        Fixed timestamps, so repeated requests (a resumed download) get the same bytes."""
        parts = path.split("/")  # "", "competition-data", slug, "<slug>.zip"
        if len(parts) != 4 or not COMPETITION_RE.match(parts[2]) or parts[3] != f"{parts[2]}.zip":
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
