"""What code run on Kaggle may import: the stdlib and the modules of the distributions in Kaggle's image
(toolkit/data/kaggle_image_packages.txt, the list the local backend's import guard reads too)."""

from __future__ import annotations

import ast
import re
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

IMAGE_LIST = Path(__file__).resolve().parent.parent / "toolkit" / "data" / "kaggle_image_packages.txt"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@lru_cache(maxsize=1)
def kaggle_modules() -> frozenset[str]:
    """Top-level module names a kernel can import on Kaggle."""
    image = {_norm(re.match(r"[A-Za-z0-9._-]+", line).group(0)) for line in IMAGE_LIST.read_text().splitlines()
             if line.strip() and not line.startswith("#")}
    provided = {module for module, dists in metadata.packages_distributions().items()
                if any(_norm(d) in image for d in dists)}
    return frozenset(provided | set(sys.stdlib_module_names))


def _fallbacks(tree: ast.AST) -> set[int]:
    """Imports inside `try: ... except ImportError:` (the toolkit's error types where it is installed)."""
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers):
            guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return guarded


def imported_modules(source: str) -> set[str]:
    """Top-level modules `source` imports, relative imports and guarded fallbacks left out."""
    tree = ast.parse(source)
    guarded, found = _fallbacks(tree), set()
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def not_on_kaggle(source: str) -> set[str]:
    """What `source` imports that Kaggle's image does not have."""
    return imported_modules(source) - kaggle_modules()
