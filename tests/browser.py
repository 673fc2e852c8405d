"""A real headless browser for the tests that look at pages: Debian's chromium (`make test` installs it when
missing), started as an unprivileged sandbox-less process with its background networking off (this machine
has no network), on a fresh profile each time."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "no chromium: `make test` installs Debian's chromium, or run `apt-get install -y chromium`"
    return found


def _run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout)


def rendered_dom(page: Path, fragment: str = "") -> str:
    """The page's DOM after its scripts ran (`fragment`: the part after # in its address)."""
    url = page.resolve().as_uri() + (f"#{fragment}" if fragment else "")
    done = _run("--virtual-time-budget=5000", "--dump-dom", url)
    assert done.returncode == 0 and "<html" in done.stdout, done.stderr[-2000:]
    return done.stdout


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 2400) -> Path:
    done = _run(f"--window-size={width},{height}", "--hide-scrollbars", f"--screenshot={png}", page.resolve().as_uri())
    assert done.returncode == 0 and png.is_file(), done.stderr[-2000:]
    return png


def overflows(page: Path, width: int = 1280) -> dict:
    """Whether a page is wider than a `width`-pixel window, and whether its results table scrolls in its own box:
    measured by the browser itself in a copy of the page, which writes the figures into its DOM."""
    probe = page.with_name(page.stem + ".probe.html")
    measure = ("<script>const t = document.getElementById('results-table');"
               "document.body.dataset.page = document.documentElement.scrollWidth > window.innerWidth;"
               "document.body.dataset.table = t.scrollWidth > t.clientWidth;</script></body>")
    probe.write_text(page.read_text().replace("</body>", measure))
    done = _run(f"--window-size={width},900", "--virtual-time-budget=3000", "--dump-dom", probe.resolve().as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    found = {key: f'data-{key}="true"' in done.stdout for key in ("page", "table")}
    assert 'data-page="' in done.stdout, done.stdout[-2000:]
    return found
