"""Failures of the kaggle client (2.2.5), translated in one place into the toolkit's typed errors: one line a
user can act on, never a traceback, never a secret. The client's own exceptions are read here only."""

from __future__ import annotations

import contextlib
import io
from typing import Any, Iterator

from toolkit.core.errors import (BackendError, DownloadFailed, HttpError, KernelNotFound, LogStreamFailed,
                                 NotConfigured, UnsafeOutput)

# As kaggle 2.2.5's own help (print_auth_help) puts it: a token from the settings page, or `kaggle auth login`.
TOKEN_HINT = ("on kaggle.com -> Settings -> API click Generate New Token, then export KAGGLE_API_TOKEN=<token> or save "
              "it to ~/.kaggle/access_token; or run `kaggle auth login`")
# A kernel that does not exist and one that is not yours both get 403 "Permission 'kernels.get' was denied":
# "403 can in some cases also mean 'not found'" (a maintainer, Kaggle/kaggle-cli#548); kaggle 2.2.5's own
# kernels_status / kernels_output / kernels_logs put that 403 down to "a wrong kernel slug" first.
KERNEL_DENIED = "Permission 'kernels.get' was denied"
# kaggle 2.2.5's kernels_logs_stream is a GET too (kaggle_api_extended.py ~7749), of this path, not a signed link.
LOG_STREAM = "/v1/kernels/logs/stream/"
# What to do about a log stream that failed, by its HTTP status.
STREAM_HINTS = {404: "Kaggle has no log of it yet (a version still queued has none): follow it again once it runs",
                429: "Kaggle rate-limited the stream: wait a minute and follow it again"}
STREAM_HINT = ("the run itself goes on: klogs RUN (without --follow) prints its log as far as it has got, and "
               "--follow again later streams the rest")
# kaggle 2.2.5's kernels_output raises a plain ValueError for an output name that would land outside the
# destination ("Refusing to download '../x': resolves outside destination ...").
OUTSIDE_DEST = "Refusing to download"


@contextlib.contextmanager
def calling(what: str, kernel: str | None = None) -> Iterator[None]:
    """Any failure of the client calls inside becomes the typed error `translate` makes of it. The client's own
    notices of its retries ("Request failed: ... Will retry in 1.0 seconds", which with_retry prints to stderr:
    kaggle_api_extended.py ~1395) are not let through: they would break a live table and a one-line error, and
    the toolkit says what finally failed."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    except (BackendError, UnsafeOutput):
        raise
    except Exception as exc:
        raise translate(exc, what, kernel) from None


def translate(exc: BaseException, what: str, kernel: str | None = None) -> Exception:
    """The typed error for a failed client call; `what` says what was being done. `kernel` (owner/slug)
    names the kernel a call was about, so that a 403 says the kernel is missing."""
    import requests

    if _failed_get(exc, LOG_STREAM):  # the log, not the run: a stream that fails says nothing of the kernel
        code = exc.response.status_code
        return LogStreamFailed(f"{what}: Kaggle's log stream failed (HTTP {code})",
                               STREAM_HINTS.get(code, STREAM_HINT), status=code)
    if _is_download(exc):  # a file's signed link, not the API: a refused link is no news about the kernel
        code = exc.response.status_code
        return DownloadFailed(f"{what}: a file download was refused (HTTP {code}"
                              f"{', an expired link' if code in (400, 403) else ''})")
    denied = _denied(exc, what, kernel)
    if denied is not None:
        return denied
    if isinstance(exc, requests.HTTPError):
        return _http_error(exc, what)
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return BackendError(f"could not reach Kaggle for {what} ({type(exc).__name__})",
                            "check the network and run the command again; nothing is lost")
    if isinstance(exc, ValueError) and str(exc).startswith(OUTSIDE_DEST):
        return UnsafeOutput(str(exc).splitlines()[0][:300],
                            "outputs must be plain files inside the kernel's working directory")
    if isinstance(exc, (ValueError, KeyError)):
        return BackendError(f"{what}: {str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}")
    return BackendError(f"{what} failed: {type(exc).__name__}: {str(exc)[:300]}")


def _denied(exc: BaseException, what: str, kernel: str | None) -> Exception | None:
    """A 401 (bad credentials) or 403 (a missing kernel, or no permission) as what the user should fix."""
    code = _denied_code(exc)
    if code == 401:
        return NotConfigured(f"Kaggle refused {what} (HTTP 401): the credentials were rejected",
                             f"check them; {TOKEN_HINT}")
    if code == 403 and kernel:
        return KernelNotFound(f"kernel {kernel} not found or not yours",
                              "check the slug, and that these credentials are the account that pushed it")
    if code == 403:
        return NotConfigured(f"Kaggle refused {what} (HTTP 403): these credentials lack permission",
                             "for a competition, join it and accept its rules on kaggle.com; "
                             "otherwise check the credentials")
    return None


def _http_error(exc: Any, what: str) -> HttpError:
    code = exc.response.status_code if exc.response is not None else None
    first_line = str(exc).split("\n")[0][:300]
    if code == 429:
        return HttpError(f"Kaggle rate-limited {what} (HTTP 429)", "wait a minute and run the command again",
                         status=code)
    if code == 404:
        return HttpError(f"{what}: not found on Kaggle (HTTP 404)", "check the slug, version or competition",
                         status=code)
    return HttpError(f"{what} failed on Kaggle (HTTP {code}): {first_line}",
                     "Kaggle may be having trouble; run the command again later", status=code or 0)


def passing(exc: BaseException) -> bool:
    """A failure of the log stream worth opening it again for: a dropped connection, 429 or 5xx."""
    import requests

    if isinstance(exc, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        return True
    return isinstance(exc, requests.HTTPError) and (http_code(exc) == 429 or http_code(exc) >= 500)


def _is_download(exc: BaseException) -> bool:
    """An HTTP error of a file download: the client GETs signed links (kernels_output), while every API call
    is a POST (kagglesdk's KaggleHttpClient); the log stream is told apart first."""
    return _failed_get(exc, "")


def _failed_get(exc: BaseException, path: str) -> bool:
    """An HTTP error answering a GET whose URL holds `path`."""
    import requests

    response = getattr(exc, "response", None) if isinstance(exc, requests.HTTPError) else None
    request = getattr(response, "request", None)
    return (request is not None and request.method == "GET" and response.status_code >= 400
            and path in (request.url or ""))


def _denied_code(exc: BaseException) -> int:
    """401 or 403 behind a client error, else 0. kaggle 2.2.5's kernels_status / kernels_output / kernels_logs
    turn both codes into one ValueError (KERNEL_DENIED), raised while handling the HTTPError: the code is
    read from there, so a rejected key still reads as a credentials problem."""
    import requests

    cause = exc.__context__ if isinstance(exc, ValueError) else exc
    code = http_code(cause) if isinstance(cause, requests.HTTPError) else 0
    if code in (401, 403):
        return code
    return 403 if isinstance(exc, ValueError) and KERNEL_DENIED in str(exc) else 0


def http_code(exc: Any) -> int:
    """The HTTP status of a client error; the client also raises on HTTP 200 whose JSON body has a code."""
    response = getattr(exc, "response", None)
    if response is None:
        return 0
    if response.status_code >= 400:
        return response.status_code
    try:
        return int(response.json().get("code") or 0)
    except (ValueError, TypeError, AttributeError):
        return 0
