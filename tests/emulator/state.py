"""The emulator itself: its state (kernels, uploads, submissions, quota, injected faults, recorded requests),
its lifecycle and test helpers, and the routing of each RPC to the method that answers it."""

from __future__ import annotations

import base64
import itertools
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .datasets import Datasets
from .kernels import Kernels
from .model import Fault, Recorded, Version
from .submissions import Submissions
from .wire import handler


class KaggleEmulator(Kernels, Submissions, Datasets):
    """Kaggle's API on 127.0.0.1 for the real client: see the package docstring."""

    def __init__(self, workdir: Path, competitions_root: Path, username: str = "testuser", key: str = "",
                 run_kernels: bool = False, gpu_slots: int = 2, polls_to_complete: int = 2, input_layout: str = "current",
                 scripted_outputs: dict[str, bytes] | None = None, shells: bool = True, token: str = "",
                 daily_submissions: int = 5):
        self.workdir = Path(workdir)
        self.competitions_root = Path(competitions_root)
        self.username, self.key = username, key
        self.token = token  # an access token (KAGGLE_API_TOKEN) it accepts besides the key, when set
        # A first push refused for a session limit or the quota leaves an empty kernel of that slug (public push
        # logs, 2026): every later push to it answers "Notebook not found" until it is deleted.
        self.shells = shells
        self.deleted: list[str] = []  # kernels removed through DeleteKernel, in order
        self.run_kernels, self.gpu_slots, self.polls_to_complete = run_kernels, gpu_slots, polls_to_complete
        self.input_layout = input_layout  # "current" (input/competitions/<slug>, ...) or the older "flat" one
        self.scripted_outputs = dict(scripted_outputs or {})
        self.kernels: dict[str, dict] = {}  # slug -> {"id", "title", "versions": {n: Version}}
        self.uploads: dict[str, dict] = {}
        self.submissions: dict[int, dict] = {}
        # Valid submissions a team may make per competition and UTC day (5 in a public 2026 quote of Kaggle's
        # refusal; 1, 10 and 20 in others: each competition sets its own).
        self.daily_submissions = daily_submissions
        self.gpu_seconds_used = 3600
        # GetAcceleratorQuotaStatistics' gpuQuota (kaggle 2.2.5 quota_view, kagglesdk 0.1.38 ApiAcceleratorQuota):
        # timeReserved is "Quota reserved by currently-running sessions".
        self.gpu_seconds_allowed = 30 * 3600
        self.gpu_seconds_reserved = 0
        # quotaRefreshTime: when the weekly GPU quota comes back. At that moment the emulator's used time goes to
        # zero and the next refresh is a week later, as Kaggle's weekly reset does; tests move it near to now.
        self.quota_refresh_at = 1893888000.0  # 2030-01-06T00:00:00Z
        self.cpu_slots = 5  # CPU kernels' own batch session limit (5 in public push logs)
        self.rules_unaccepted: set[str] = set()  # competitions whose data download answers 403 (rules not accepted)
        self.datasets: dict[tuple[str, str], object] = {}  # (owner, slug) -> datasets.Dataset
        self.dataset_ids = itertools.count()
        self.datasets_root = self.workdir / "datasets" / "mounted"  # the runner's datasets_root: newest READY versions
        self.dataset_polls_to_ready = 1  # status polls a version reads as processing before it is READY
        self.dataset_hidden_polls = 0  # status polls a new dataset answers 404 first (Kaggle/kaggle-cli#890)
        # Kaggle's limits on one dataset and on all of a user's private ones (the figures are the emulator's; tests
        # lower them): past the first, a refusal; past the second, a dataset accepted and never made (#284).
        self.dataset_max_bytes = 100 * 2**30
        self.private_quota_bytes = 200 * 2**30
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self._runner = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler(self))
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
            from toolkit.backends.local.backend import LocalBackend
            from toolkit.core.config import load_config

            project = self.workdir / "runner"
            project.mkdir(parents=True, exist_ok=True)
            (project / "toolkit.toml").write_text(
                f'competitions_root = "{self.competitions_root.resolve()}"\nconcurrency = 2\n'
                f'username = "{self.username}"\ninput_layout = "{self.input_layout}"\n'
                f'datasets_root = "{self.datasets_root.resolve()}"\n')
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

    # -- routing -------------------------------------------------------------------------------

    def authorized(self, headers: Any) -> bool:
        """HTTP Basic username:key (kaggle.json, KAGGLE_KEY), or Bearer with the access token (KAGGLE_API_TOKEN,
        ~/.kaggle/access_token), as kagglesdk's KaggleHttpClient sends them."""
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, key = base64.b64decode(auth[6:]).decode().partition(":")
            return user == self.username and (not self.key or key == self.key)
        return bool(self.token) and auth == f"Bearer {self.token}"

    def introspect_token(self, body: dict) -> tuple[int, dict]:
        """security.OAuthService/IntrospectToken, which kaggle 2.2.5's authenticate() calls for a token: the client
        takes it only when `active` is true and `username` set; 400/403/404 make it try the next method. A token
        this server does not hold (invalid, expired) is not active, as OAuth 2.0 token introspection answers
        (RFC 7662, 2.2: "active": false for a token that is not active or does not exist); a call that sends it
        as its Bearer token is refused with a 401 (`authorized`)."""
        if not self.token or body.get("token") != self.token:
            return 200, {"active": False}
        return 200, {"active": True, "username": self.username, "scope": "resources.admin:*"}

    def rpc(self, method: str, body: dict, fault: Fault | None) -> tuple[int, dict]:
        simple = {"GetKernelSessionStatus": self.kernel_status, "ListKernelSessionOutput": self.list_output,
                  "GetKernel": self.get_kernel, "DeleteKernel": self.delete_kernel,
                  "IntrospectToken": self.introspect_token, "ListDataTreeFiles": self.list_data_tree,
                  "StartSubmissionUpload": self.start_upload, "CreateSubmission": self.create_submission,
                  "CreateCodeSubmission": self.create_code_submission, "GetSubmission": self.get_submission,
                  "ListSubmissions": self.list_submissions, "DownloadDataFiles": self.download_data_files,
                  "GetSubmissionLimits": self.submission_limits, "StartBlobUpload": self.start_blob_upload,
                  "CreateDataset": self.create_dataset, "CreateDatasetVersion": self.create_dataset_version,
                  "GetDatasetStatus": self.dataset_status, "GetDataset": self.get_dataset}
        if method == "SaveKernel":
            return 200, self.save_kernel(body, fault)
        if method in simple:
            return simple[method](body)
        if method == "GetAcceleratorQuotaStatistics":
            return 200, self.quota()
        return 404, {"code": 404, "message": f"method {method} is not emulated"}
