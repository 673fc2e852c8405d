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
    """An authenticated KaggleApi, or NotConfigured saying where credentials were looked for, or which access
    token Kaggle refused."""
    api = _load_client()()
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the client prints its own help text
            api.authenticate()
    except SystemExit:
        raise _refused_token(fallback=False) or NotConfigured(f"no Kaggle credentials found ({_where(api)})",
                                                              TOKEN_HINT) from None
    except Exception as exc:  # a token check that could not reach Kaggle
        raise translate(exc, "checking Kaggle credentials") from None
    if not api.get_config_value("token"):  # a key or nothing: a token the client found was refused
        refused = _refused_token(fallback=True)
        if refused is not None:
            raise refused
    if not api.get_config_value("username"):
        raise NotConfigured(f"Kaggle credentials have no username ({_where(api)})", TOKEN_HINT)
    return api


def _refused_token(fallback: bool) -> NotConfigured | None:
    """The error for an access token Kaggle refused, or None when the client found none. kaggle 2.2.5 asks
    IntrospectToken about the first token it finds (kagglesdk get_access_token_from_env), and when Kaggle answers
    it is not active (invalid or expired) goes on quietly to a key or exits as if it had found nothing
    (kaggle_api_extended.py _authenticate_with_access_token, authenticate). With a key (`fallback`), every call
    still sends that token (kagglesdk KaggleHttpClient._try_fill_auth) and is refused with a 401."""
    from kagglesdk.kaggle_env import get_access_token_from_env

    token, source = get_access_token_from_env()
    if not token:
        return None
    where = _token_place(source)
    also = (f"; or remove it ({where}) to use your key: the client sends a token it finds with every call"
            if fallback else "")
    return NotConfigured(f"Kaggle refused the access token in {where} (invalid or expired)",
                         f"make a new one: on kaggle.com -> Settings -> API click Generate New Token and put it in "
                         f"{where}{also}")


def _token_place(source: str) -> str:
    """Where kagglesdk found the token, as a user would look for it."""
    if source == "KAGGLE_API_TOKEN":
        value = os.environ.get("KAGGLE_API_TOKEN", "")
        return f"the file KAGGLE_API_TOKEN names ({value})" if Path(value).exists() else "KAGGLE_API_TOKEN"
    if source == "access_token":  # ~/.kaggle/access_token, else access_token.txt: what the user saved
        plain = (Path.home() / ".kaggle" / "access_token").is_file()
        return "~/.kaggle/access_token" + ("" if plain else ".txt")
    return source or "an access token"
