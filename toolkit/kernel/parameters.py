"""What a template declares: the names a run may set in it, papermill's way for notebooks.

- A notebook declares the names its cell tagged `parameters` assigns (papermill's convention); each default is
  kept as written. A run's values go to those names only, in the cell injected after it.
- A percent template (`.py.j2`) that extends the shipped `train.py.j2` reads every run field, as the shipped
  one does; one that does not reads the fields it names (ARCH, EPOCHS, ..., or Jinja2's `item`, `batch`). The
  free parameters a percent template reads are those it names: `params.NAME` or `params['NAME']` in Jinja2,
  `PARAMS['NAME']` or `PARAMS.get('NAME')` in Python; naming `params` or `PARAMS` whole takes any.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.core.errors import SpecError

# The names a run field goes by in a template: papermill-style lower case, and the shipped template's upper case.
FIELD_NAMES = {
    "arch": ("arch", "ARCH"), "competition": ("competition", "comp", "COMPETITION"), "item": ("item", "ITEM"),
    "batch": ("batch", "BATCH"), "epochs": ("epochs", "EPOCHS"), "lr": ("lr", "LR"), "accum": ("accum", "ACCUM"),
    "bs": ("bs", "BS"), "seed": ("seed", "SEED"), "precision": ("precision", "PRECISION"),
    "pretrained": ("pretrained", "PRETRAINED"), "valid_pct": ("valid_pct", "VALID_PCT"),
    "pipeline": ("pipeline", "PIPELINE"),
}
TRANSFORM_FIELDS = ("item", "batch")  # fastai objects in the kernel, validated expressions here
ANY_PARAM = "PARAMS"  # a notebook declaring it takes every --param, as a dict
_PARAM_NAMED = re.compile(r"""\bparams\.(\w+)|\bparams\[\s*['"](\w+)['"]\s*\]|\bPARAMS\[\s*['"](\w+)['"]\s*\]"""
                          r"""|\b(?:params|PARAMS)\.get\(\s*['"](\w+)['"]""")
_PARAMS_WHOLE = re.compile(r"\b(params|PARAMS)\b(?!\s*(\.\w|\[))")
_EXTENDS = re.compile(r"""{%-?\s*extends\s+['"]([^'"]+)['"]""")
_MAGIC = re.compile(r"^\s*[%!]")


@dataclass(frozen=True)
class Expression:
    """A default that is not a literal (`Resize(480)`), kept as its text."""

    text: str


@dataclass(frozen=True)
class Declared:
    """What a template takes from a run."""

    names: dict[str, object] = field(default_factory=dict)  # declared name -> its default (a value or Expression)
    every_field: bool = False  # it reads every run field (it extends the shipped template)
    params: frozenset[str] = frozenset()  # the free parameters it reads by name
    any_param: bool = False  # it takes any free parameter

    def names_of(self, field_name: str) -> list[str]:
        """The names a run field goes by here (empty: not declared)."""
        if self.every_field:
            return [FIELD_NAMES[field_name][-1]]
        return [n for n in FIELD_NAMES[field_name] if n in self.names]

    def fields(self) -> set[str]:
        return {f for f in FIELD_NAMES if self.names_of(f)}

    def takes_param(self, name: str) -> bool:
        return self.any_param or name in self.params

    def default(self, field_name: str) -> object:
        """The template's own default for a run field (None when it has none that a run can show)."""
        names = [n for n in FIELD_NAMES[field_name] if n in self.names]
        return self.names[names[0]] if names else None

    def shown(self) -> str:
        """What it declares, for a message."""
        if self.every_field:
            return "every run field" + (f" and the parameters {', '.join(sorted(self.params))}" if self.params else "")
        return ", ".join(self.names) or "nothing"


def notebook_declared(source: str, shown: str) -> Declared:
    """The names a parameters cell assigns, each with its default; IPython's `%` and `!` lines are skipped."""
    code = "\n".join("" if _MAGIC.match(line) else line for line in source.splitlines())
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise SpecError(f"{shown}: its parameters cell is not valid Python (line {exc.lineno}: {exc.msg})",
                        "fix the cell tagged 'parameters'") from None
    names: dict[str, object] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, ast.AnnAssign) and node.value is not None else []
        for target in targets:
            for name in _target_names(target):
                names[name] = _default(node.value, single=isinstance(target, ast.Name))
    fields = {alias for aliases in FIELD_NAMES.values() for alias in aliases}
    return Declared(names=names, params=frozenset(set(names) - fields - {ANY_PARAM}), any_param=ANY_PARAM in names)


def _target_names(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for element in target.elts for n in _target_names(element)]
    return []


def _default(value: ast.AST, single: bool) -> object:
    if not single:
        return Expression("")
    try:
        return ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return Expression(ast.unparse(value))


def percent_declared(path: Path) -> Declared:
    """What a percent template reads, following its `{% extends %}` chain through the user's own templates;
    reaching the shipped train.py.j2 means every run field."""
    texts, every, current, seen = [], False, path, set()
    while current is not None and current not in seen:
        seen.add(current)
        text = current.read_text()
        texts.append(text)
        parent = _EXTENDS.search(text)
        if parent is None:
            break
        if parent.group(1) == "train.py.j2" and not (current.parent / "train.py.j2").is_file():
            every = True
            break
        current = current.parent / parent.group(1) if (current.parent / parent.group(1)).is_file() else None
    whole = "\n".join(texts)
    named = {next(g for g in m.groups() if g) for m in _PARAM_NAMED.finditer(whole)}
    names = {n: None for f, aliases in FIELD_NAMES.items() for n in aliases if re.search(rf"\b{n}\b", whole)}
    return Declared(names=names, every_field=every, params=frozenset(named),
                    any_param=bool(_PARAMS_WHOLE.search(_PARAM_NAMED.sub("", whole))))
