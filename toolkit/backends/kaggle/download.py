"""`kpull data`: set up competitions/<slug>/ for the local backend from Kaggle, with fastkaggle's `setup_comp`.

fastkaggle is used here, on the user's machine, never in a kernel (Kaggle's image does not include it).
`setup_comp(slug)` downloads `<slug>.zip` into the working directory through the kaggle client and unpacks
it into `<slug>/`. It runs in a child process started in a staging folder inside competitions_root, so
this process never changes its working directory, the client's own progress output is captured, and a
silent or interrupted download is stopped by ending the child. The unpacked folder is checked for
Paddy's shape and only then renamed into place; the zip goes with the staging folder.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from toolkit.core.config import Config
from toolkit.core.errors import BackendError, CompetitionError, NotConfigured, ToolkitError
from toolkit.core.procs import remove_abandoned

OUTCOME = "outcome.json"  # what the child writes when setup_comp fails
CLIENT_LOG = "client.log"  # the client's own output (progress bars, "Downloading ..."), never shown
POLL_S = 0.25


@dataclass(frozen=True)
class Fetched:
    path: Path
    train_images: int
    classes: int
    test_images: int


def fetch(config: Config, slug: str, force: bool = False, show: Callable[[str], None] = lambda _: None) -> Fetched:
    """Download competition `slug` from Kaggle into competitions_root/<slug>/ (replacing it only with `force`).
    `show` receives a short line whenever the step or the downloaded size changes."""
    from toolkit.specs.spec import check_competition_name

    check_competition_name(slug)
    root = config.resolve(config.competitions_root)
    target = root / slug
    if target.exists() and not force:
        raise ToolkitError(f"{target} already exists", "use --force to download it again and replace it")
    _check_credentials()
    made_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    remove_abandoned(root, f".{slug}.partial-*")
    staging = root / f".{slug}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        _download(staging, slug, config.api_timeout_s, show)
        show(f"Checking {slug}")
        _check(staging / slug, root / f".{slug}.unchecked", config.labels_given)
        _put_in_place(staging / slug, target, force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if made_root and not any(root.iterdir()):  # a failed first download leaves no empty folder behind
            root.rmdir()
    return _summary(target, config.labels_given)


def _check_credentials() -> None:
    """The toolkit's one-line error for missing credentials, before any download starts. The client reads
    the `path` setting too: when set, it downloads under <path>/competitions/<slug>/ instead of the working
    directory, where setup_comp looks for the zip."""
    from toolkit.backends.kaggle.credentials import authenticate

    api = authenticate()
    if api.get_config_value("path"):
        raise NotConfigured("the kaggle client's `path` setting sends downloads to "
                            f"{api.get_config_value('path')}, not to the competitions folder",
                            "remove it with `kaggle config unset -n path` (or unset KAGGLE_PATH)")


def _download(staging: Path, slug: str, timeout_s: float, show: Callable[[str], None]) -> None:
    """Run setup_comp in a child inside `staging`; stop it when nothing arrives for `timeout_s` (the client
    sets no timeout of its own on the first request)."""
    env = {k: v for k, v in os.environ.items() if k != "KAGGLE_KERNEL_RUN_TYPE"}  # else setup_comp skips the download
    package_root = str(Path(__file__).resolve().parents[3])  # the child imports this module, installed or not
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    with open(staging / CLIENT_LOG, "wb") as log:
        child = subprocess.Popen([sys.executable, "-m", "toolkit.backends.kaggle.download", slug], cwd=staging, env=env,
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        _watch(child, staging, slug, timeout_s, show)
    finally:
        if child.poll() is None:  # an error or Ctrl-C here: nothing may keep writing into the staging folder
            child.kill()
            child.wait()
    if child.returncode != 0:
        raise _failure(slug, staging / OUTCOME)
    if not (staging / slug).is_dir():
        raise BackendError(f"the download of {slug} left no folder to check", "run the command again")


def _watch(child: subprocess.Popen, staging: Path, slug: str, timeout_s: float, show: Callable[[str], None]) -> None:
    zip_file, unpacked = staging / f"{slug}.zip", staging / slug
    seen, since = None, time.monotonic()
    while child.poll() is None:
        size = zip_file.stat().st_size if zip_file.is_file() else 0
        state = ("unpacking", 0) if unpacked.exists() else ("downloading", size)
        if state != seen:
            seen, since = state, time.monotonic()
            show(f"Unpacking {slug}" if state[0] == "unpacking" else
                 f"Downloading {slug} from Kaggle" + (f": {size / 2**20:.1f} MB" if size else ""))
        elif state[0] == "downloading" and time.monotonic() - since > timeout_s:
            raise BackendError(f"Kaggle sent nothing for {timeout_s:g} s while downloading {slug}",
                               "check the network and run the command again; nothing was kept")
        time.sleep(POLL_S)


def _failure(slug: str, outcome: Path) -> ToolkitError:
    """One line for a failed setup_comp, from what the child recorded (never the credentials: only the
    status code and Kaggle's own message travel)."""
    from toolkit.backends.kaggle.errors import TOKEN_HINT

    try:
        info = json.loads(outcome.read_text())
    except (OSError, ValueError):
        info = {"code": None, "message": "the download process ended without saying why"}
    code, message = info.get("code"), str(info.get("message") or "")[:300]
    rules = (f"check the slug, then join the competition and accept its rules on "
             f"kaggle.com/competitions/{slug}/rules")
    if code == 401:
        return NotConfigured(f"Kaggle refused to download {slug} (HTTP 401): the credentials were rejected",
                             f"check them; {TOKEN_HINT}")
    if code == 403:
        return BackendError(f"Kaggle refused to download {slug} (HTTP 403: {message})", rules)
    if code == 404:
        return BackendError(f"no competition '{slug}' on Kaggle (HTTP 404)", rules)
    if code == "connection":
        return BackendError(f"could not reach Kaggle to download {slug} ({message})",
                            "check the network and run the command again; nothing was kept")
    if code == "no-credentials":
        return NotConfigured(f"the kaggle client found no credentials for {slug}", TOKEN_HINT)
    where = f"HTTP {code}: " if isinstance(code, int) else ""
    return BackendError(f"downloading {slug} failed ({where}{message})", "run the command again; nothing was kept")


def _check(folder: Path, kept: Path, given: dict) -> None:
    """Paddy's shape (or its CSV-labelled variant), or one line naming what is missing; the unpacked files
    are then kept at `kept` (a download can be large: they may only need arranging) and the zip removed."""
    from toolkit.competitions.layout import check_competition

    try:
        check_competition(folder, given)
    except CompetitionError as exc:
        shutil.rmtree(kept, ignore_errors=True)
        os.replace(folder, kept)
        # A labels CSV the toolkit could not read alone needs a setting, not rearranged files.
        fix = exc.hint if "toolkit.toml" in exc.hint else ("arrange them as train_images/<label>/<image> (or "
                                                           "train_images/<image> and train.csv), test_images/<image>, "
                                                           "sample_submission.csv")
        raise CompetitionError(f"the download of {folder.name} is not in Paddy's shape: "
                               f"{exc.message.replace(str(folder), str(kept))}; its files were kept in {kept}",
                               f"{fix}, then rename the folder to {kept.parent / folder.name}") from None


def _put_in_place(folder: Path, target: Path, force: bool) -> None:
    """One rename; with `force`, the old folder is moved aside first and deleted once the new one is in."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if force and target.exists():
        os.replace(target, old)
    try:
        os.rename(folder, target)
    except OSError as exc:
        if old.exists() and not target.exists():
            os.replace(old, target)
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise ToolkitError(f"{target} already exists (another command made it meanwhile)",
                               "use --force to replace it") from None
        raise ToolkitError(f"could not move the download into {target} ({exc.strerror})",
                           "check the folder's permissions and run the command again") from None
    shutil.rmtree(old, ignore_errors=True)


def _summary(path: Path, given: dict) -> Fetched:
    from toolkit.competitions.files import image_files
    from toolkit.competitions.layout import train_labels

    labels = train_labels(path, given)
    return Fetched(path, len(labels), len(set(labels.values())), len(image_files(path / "test_images")))


# -- the child process -------------------------------------------------------------------------

def _describe(exc: BaseException) -> dict:
    """What the parent needs to say why: a status code (or a kind) and Kaggle's message, first line only."""
    import requests

    if isinstance(exc, requests.HTTPError):
        code = exc.response.status_code if exc.response is not None else None
        return {"code": code, "message": str(exc).splitlines()[0] if str(exc) else ""}
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return {"code": "connection", "message": type(exc).__name__}
    if isinstance(exc, SystemExit):  # kaggle's authenticate() exits when it finds no credentials
        return {"code": "no-credentials", "message": ""}
    return {"code": None, "message": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}


def main(argv: list[str]) -> int:
    """Child: `setup_comp(slug)` in the working directory (the staging folder)."""
    try:
        from fastkaggle import setup_comp

        setup_comp(argv[0])
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the parent, which explains it
        Path(OUTCOME).write_text(json.dumps(_describe(exc)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
