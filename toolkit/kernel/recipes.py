"""The user's own templates ("recipes"): `--template NAME` finds `templates/NAME.py.j2` (Jinja2 in jupytext's
percent format, usually `{% extends "train.py.j2" %}` with blocks overridden) or `templates/NAME.ipynb` (a
notebook with a cell tagged `parameters`, papermill's convention) in the project, else an example shipped
with the toolkit (toolkit/kernel/examples/), which users copy into templates/ to change."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from toolkit.core.errors import SpecError

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
SUFFIXES = (".py.j2", ".ipynb")
BLOCK = re.compile(r"{%-?\s*block\s+(\w+)")


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path
    shown: str  # how messages name it: templates/label_smoothing.py.j2, or the example's name

    @property
    def notebook(self) -> bool:
        return self.path.suffix == ".ipynb"

    @property
    def digest(self) -> str:
        """Of the file's bytes: an edited template renders another run (its slug changes with it)."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]

    def blocks(self) -> set[str]:
        """The blocks a percent template overrides (a notebook has none)."""
        return set() if self.notebook else set(BLOCK.findall(self.path.read_text()))


def find(templates_dir: Path, name: str) -> Recipe:
    """The template `name`: the project's, else a shipped example; one line listing what there is when neither."""
    for folder, shown in ((templates_dir, f"{templates_dir.name}/"), (EXAMPLES_DIR, "example ")):
        for suffix in SUFFIXES:
            path = folder / f"{name}{suffix}"
            if path.is_file():
                label = f"{shown}{name}{suffix}" if folder == templates_dir else f"example {name}{suffix}"
                return Recipe(name, path, label)
    theirs, examples = available(templates_dir), available(EXAMPLES_DIR)
    found = (f"found {', '.join(theirs)} in {templates_dir.name}/" if theirs else f"{templates_dir.name}/ has none")
    raise SpecError(f"no template '{name}': {found}; examples: {', '.join(examples)}",
                    f"add {templates_dir.name}/{name}.py.j2 or {templates_dir.name}/{name}.ipynb (docs/recipes.md "
                    "shows how)")


def available(folder: Path) -> list[str]:
    """The template names in `folder`."""
    if not folder.is_dir():
        return []
    return sorted({p.name[: -len(s)] for p in folder.iterdir() for s in SUFFIXES if p.name.endswith(s)})
