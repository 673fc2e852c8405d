"""Kaggle credentials as kaggle 2.2.5 finds them: the client imported quietly, authenticated (a token, a key,
or `kaggle auth login`'s OAuth file), and the username the credentials name without a call."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

from toolkit.backends.kaggle.errors import TOKEN_HINT, translate
from toolkit.core.errors import NotConfigured


def _load_client() -> Any:
    """KaggleApi, imported quietly: the package __init__ authenticates and prints help when it cannot."""
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            from kaggle.api.kaggle_api_extended import KaggleApi
        except SystemExit:  # pragma: no cover - the package swallows it, but older releases did not
            raise NotConfigured("the kaggle client could not start", TOKEN_HINT) from None
    return KaggleApi


def _where(api: Any) -> str:
    """Where kaggle 2.2.5's authenticate() looks, in its order (kaggle_api_extended.py, kagglesdk/kaggle_env.py)."""
    config_dir = getattr(api, "config_dir", "") or "~/.kaggle"
    return (f"looked for KAGGLE_API_TOKEN, ~/.kaggle/access_token, KAGGLE_USERNAME/KAGGLE_KEY, "
            f"{os.path.join(config_dir, 'kaggle.json')} and ~/.kaggle/credentials.json")


def _config_dir() -> Path:
    """The client's config folder, as kaggle 2.2.5 picks it at import: KAGGLE_CONFIG_DIR, else ~/.kaggle when it
    exists, else $XDG_CONFIG_HOME/kaggle (~/.config/kaggle)."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return Path(os.environ["KAGGLE_CONFIG_DIR"])
    home = Path.home() / ".kaggle"
    return home if home.exists() else Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kaggle"


def offline_username() -> str | None:
    """The username the credentials name without asking Kaggle: KAGGLE_USERNAME, or the `username` of
    kaggle.json or of ~/.kaggle/credentials.json (`kaggle auth login`). A bare token names none: only Kaggle's
    IntrospectToken call says whose it is."""
    if os.environ.get("KAGGLE_USERNAME"):
        return os.environ["KAGGLE_USERNAME"]
    for path in (_config_dir() / "kaggle.json", Path.home() / ".kaggle" / "credentials.json"):
        try:
            name = json.loads(path.read_text()).get("username")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(name, str) and name:
            return name
    return None


def authenticate() -> Any:
    """An authenticated KaggleApi, or NotConfigured saying where credentials were looked for."""
    api = _load_client()()
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the client prints its own help text
            api.authenticate()
    except SystemExit:
        raise NotConfigured(f"no Kaggle credentials found ({_where(api)})", TOKEN_HINT) from None
    except Exception as exc:  # a token check that could not reach Kaggle
        raise translate(exc, "checking Kaggle credentials") from None
    if not api.get_config_value("username"):
        raise NotConfigured(f"Kaggle credentials have no username ({_where(api)})", TOKEN_HINT)
    return api
