"""The emulator's HTTP layer: absolute-form `POST /api/v1/<Service>/<Method>` RPCs with camelCase JSON,
`PUT` uploads and `GET` downloads (with Range and resume validators), and transport faults (429 with
Retry-After, 5xx, dropped or silent connections, truncated bodies)."""

from __future__ import annotations

import json
import re
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .model import DENIED, Fault, Recorded, log_chunks

LOG_STREAM = "/api/v1/kernels/logs/stream/"  # the one call that is not an RPC (kaggle 2.2.5 kernels_logs_stream)

if TYPE_CHECKING:
    from .state import KaggleEmulator


def handler(emulator: KaggleEmulator) -> type[BaseHTTPRequestHandler]:
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
            if fault is None or fault.kind in ("slots_full", "weekly_quota", "error_session", "timeout_session",
                                               "truncate", "drop_after"):
                return False
            if fault.kind == "drop":
                self._hang_up()
                return True
            if fault.kind == "hang":  # a connection that goes silent: nothing comes back for a long time
                time.sleep(fault.options.get("seconds", 5))
                self._hang_up()
                return True
            if fault.kind == "expired":
                # A signed link refused: 403 as the push logs describe (Cloud Storage answers an expired
                # V4 link 400 ExpiredToken, fog/fog-google#264); the toolkit treats both alike.
                body = (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code><Message>Access "
                        b"denied.</Message><Details>Request has expired</Details></Error>")
                self.send_response(403)
                self.send_header("Content-Type", "application/xml; charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
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
            if method != "IntrospectToken" and not emulator.authorized(self.headers):  # (it checks the token itself)
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
            if re.fullmatch(r"bytes \*/\d+", self.headers.get("Content-Range", "")):
                # A resumable upload's status query (kaggle 2.2.5 _resume_upload, as Cloud Storage answers it):
                # 200 when every byte arrived, else 308 Resume Incomplete (nothing kept: no Range header).
                return self._reply(200, {}) if upload["data"] is not None else self._reply(308, {})
            upload["data"] = data
            self._reply(200, {})

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path.startswith(LOG_STREAM):
                return self._log_stream(parts.path[len(LOG_STREAM):], parse_qs(parts.query))
            path = parts.path
            self._record("download", None)
            fault = emulator.take_fault("download")
            if self._generic_fault(fault):
                return
            data = emulator.download(path) if path.startswith("/download/") else emulator.competition_zip(path)
            if data is None:
                return self._reply(404, {"code": 404, "message": "not found"})
            self._send_file(data, truncate=fault is not None and fault.kind == "truncate")

        def _log_stream(self, where: str, query: dict) -> None:
            """kernels_logs_stream's GET: while the version runs, its log as server-sent events (`data: {json}`),
            one per line as the kernel prints it, then `data: END_OF_LOG`; once it has ended, the stored log
            as one JSON array (kaggle 2.2.5 kernels_logs_stream's docstring describes both)."""
            self._record("logstream", {"kernel": where, **query})
            fault = emulator.take_fault("logstream")
            if fault is not None and fault.kind != "cut" and self._generic_fault(fault):
                return
            if not emulator.authorized(self.headers):
                return self._reply(401, {"code": 401, "message": "Unauthenticated"})
            owner, _, slug = where.partition("/")
            found = emulator.log_source(owner, slug, (query.get("versionLabel") or [""])[0])
            if found is None:
                return self._reply(403, dict(DENIED))
            if not emulator.running(*found):
                return self._reply(200, json.loads(log_chunks(emulator.log_of(*found))))
            # Chunked, as a streaming server sends it: the client's reader then passes on each event as it comes
            # (without a chunk boundary it waits for 512 bytes, several lines).
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            sent, cut = 0, fault.options.get("after", 0) if fault is not None else None
            while True:
                running = emulator.running(*found)  # before reading: a line written meanwhile is still sent
                lines = emulator.log_of(*found).splitlines(keepends=True)
                for line in lines[sent:]:
                    if cut is not None and sent >= cut:
                        return self._hang_up()
                    self._chunk(b"data: " + json.dumps({"stream_name": "stdout", "data": line}).encode() + b"\n\n")
                    sent += 1
                self.wfile.flush()
                if not running:
                    self._chunk(b"data: END_OF_LOG\n\n")
                    self.wfile.write(b"0\r\n\r\n")
                    return
                time.sleep(0.2)

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

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
