"""The Ray cluster as the toolkit talks to it: its job server (Ray's own client, imported here only and lazily:
a base install has no Ray, and the CLI starts without it), the token it may ask for, its nodes, and its failures
as one-line typed errors with the fix."""

from __future__ import annotations

import asyncio
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from toolkit.core.config import Config
from toolkit.core.errors import BackendError, NotConfigured, ToolkitError

RAY_EXTRA = "pip install 'kaggle-kernel-toolkit[ray]'"
START = "ray start --head --num-gpus=N on the head node prints it"


@dataclass(frozen=True)
class Job:
    """What the toolkit reads of a Ray job: its status (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED; "" when
    the cluster has no such job), why it ended, and the node its entrypoint ran on."""

    status: str
    message: str = ""
    error_type: str = ""
    node: str = ""


@dataclass(frozen=True)
class Node:
    gpus: float
    cpus: float


def address(config: Config) -> str:
    """The job server's http address: RAY_ADDRESS, else [ray] address."""
    given = config.ray.address.strip()
    if not given:
        raise NotConfigured("the ray backend needs the address of a Ray cluster's job server",
                            f"set RAY_ADDRESS=http://HOST:8265, or address in toolkit.toml's [ray] ({START})")
    if not given.startswith(("http://", "https://")):
        raise NotConfigured(f"Ray address '{given}' is not a job server's http address",
                            "use http://HOST:8265, the dashboard's port, as `ray job submit` takes it")
    return given.rstrip("/")


def token() -> tuple[str, str] | None:
    """The cluster token where Ray's own tools look for it, and where it was found; None: nowhere."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip(), "RAY_AUTH_TOKEN"
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token").expanduser()
    try:
        return path.read_text().strip(), str(path)
    except OSError:
        return None


class Cluster:
    """One connection to the job server, made on first use (planning and reading files need none)."""

    def __init__(self, config: Config):
        self.address = address(config)
        self.timeout_s = config.api_timeout_s
        self.token = token()
        self._client: Any = None

    @property
    def headers(self) -> dict[str, str]:
        """The token, sent whatever RAY_AUTH_MODE says (a cluster without token authentication ignores it)."""
        return {"authorization": f"Bearer {self.token[0]}"} if self.token else {}

    @property
    def client(self) -> Any:
        if self._client is None:
            with self.calling("connect"):
                self._client = _client_class(self.timeout_s)(self.address, headers=dict(self.headers))
        return self._client

    def submit(self, job_id: str, entrypoint: str, gpus: int, cpus: float, metadata: dict[str, str]) -> None:
        """Submit a job once: a job of this id already there (a push cut off before it heard back) is kept."""
        try:
            with self.calling("submit a job"):
                self.client.submit_job(entrypoint=entrypoint, submission_id=job_id, entrypoint_num_gpus=gpus,
                                       entrypoint_num_cpus=cpus, metadata=metadata)
        except BackendError as exc:
            if "already exists" not in exc.message:
                raise

    def job(self, job_id: str) -> Job:
        try:
            with self.calling("read a job"):
                info = self.client.get_job_info(job_id)
        except BackendError as exc:
            if "does not exist" in exc.message:
                return Job("")
            raise
        return Job(info.status.value, (info.message or "").strip(), str(info.error_type or ""),
                   info.driver_node_id or "")

    def logs(self, job_id: str) -> str:
        with self.calling("read a job's log"):
            return self.client.get_job_logs(job_id)

    def tail(self, job_id: str) -> Iterator[str]:
        """The job's log as its entrypoint prints it, until the job ends (Ray's log stream, made synchronous)."""
        loop = asyncio.new_event_loop()
        stream = self.client.tail_job_logs(job_id)
        try:
            while True:
                with self.calling("follow a job's log"):
                    try:
                        piece = loop.run_until_complete(stream.__anext__())
                    except StopAsyncIteration:
                        return
                yield piece
        finally:
            loop.run_until_complete(stream.aclose())
            loop.close()

    def stop(self, job_id: str) -> None:
        with self.calling("stop a job"):
            self.client.stop_job(job_id)

    def nodes(self) -> list[Node]:
        """The nodes alive now, with what each has in all."""
        self.client  # noqa: B018 (connecting first says plainly when the cluster is unreachable or wants a token)
        with self.calling("list its nodes"):
            from ray.util.state.api import StateApiClient
            from ray.util.state.common import ListApiOptions, StateResource

            options = ListApiOptions(detail=True, filters=[("state", "=", "ALIVE")], timeout=int(self.timeout_s))
            client = StateApiClient(address=self.address, headers={"Content-Type": "application/json", **self.headers})
            found = client.list(StateResource.NODES, options=options, raise_on_missing_output=False)
        return [Node(n.resources_total.get("GPU", 0.0), n.resources_total.get("CPU", 0.0)) for n in found]

    @contextmanager
    def calling(self, what: str) -> Iterator[None]:
        """Ray's failures as one line each: Ray missing, the cluster unreachable, its token refused."""
        try:
            yield
        except ToolkitError:
            raise
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] != "ray":
                raise
            raise NotConfigured("the ray backend needs Ray, which the toolkit's [ray] extra installs",
                                RAY_EXTRA) from None
        except Exception as exc:
            raise translate(exc, self.address, what, self.token) from None


def translate(exc: Exception, address: str, what: str, found: tuple[str, str] | None) -> BackendError:
    """A failed call to the job server, as the user can act on it."""
    text = str(exc).strip()
    name = type(exc).__name__
    if name == "AuthenticationError":
        if found is None or "no authentication token" in text or "Missing authentication token" in text:
            return NotConfigured(f"the Ray cluster at {address} asks for a token (token authentication is on) and "
                                 "none was found", "put the head node's token (`ray get-auth-token` there) in "
                                 "~/.ray/auth_token, or name its file in RAY_AUTH_TOKEN_PATH")
        return NotConfigured(f"the Ray cluster at {address} refused the token from {found[1]}",
                             "use the head node's token: `ray get-auth-token` there")
    if isinstance(exc, ConnectionError) or name in ("ConnectionError", "ClientConnectorError", "ConnectTimeout"):
        return BackendError(f"cannot reach the Ray cluster at {address}",
                            f"start it ({START}) or point RAY_ADDRESS or [ray] address at its job server")
    if "Timeout" in name or isinstance(exc, TimeoutError):
        return BackendError(f"the Ray cluster at {address} did not answer within the time allowed",
                            "check it is up (`ray status` on its head node); api_timeout_s sets the wait")
    line = text.splitlines()[0] if text else name
    return BackendError(f"the Ray cluster at {address} could not {what}: {line[:300]}")


def _client_class(timeout_s: float) -> type:
    """Ray's job client with a limit on every call: its own sets none, so a silent server would hang a command."""
    from ray.job_submission import JobSubmissionClient

    class TimedClient(JobSubmissionClient):
        def _do_request(self, method, endpoint, **kwargs):
            kwargs.setdefault("timeout", timeout_s)
            return super()._do_request(method, endpoint, **kwargs)

    return TimedClient
