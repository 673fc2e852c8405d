"""Every one-line error of the toolkit, read from its source at build time, grouped by what it is about: each
place that builds a ToolkitError (or an output-contract error, or an error a kernel's own code raises) with a
message written in the code, shown as the user sees it (`…` where the message names something of theirs), with
its fix (the error's hint). An mkdocs hook: it fills the `<!-- errors -->` mark of troubleshooting.md."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from reference import inline

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "toolkit"
MARK = "<!-- errors -->"
KERNEL_CODE = ("kernel/runtime/",)

# Where a message is raised -> the group it is shown in, in the order a user meets them (first match wins).
GROUPS = [
    ("core/config", "Configuration: toolkit.toml, environment variables, flags"),
    ("specs/", "Run parameters, transforms and sweep files"),
    ("competitions/", "Competition folders and CSV labels"),
    ("kernel/runtime/", "Inside a kernel (shown as `cell N: Error: message`)"),
    ("kernel/", "Templates, notebooks and output files"),
    ("runs/costs/", "Estimates, sessions and quota"),
    ("runs/outputs/", "Downloaded outputs"),
    ("runs/", "Runs: planning, checks, stopping, waiting"),
    ("ensembles/", "Ensembles and submissions"),
    ("reports/", "Reports"),
    ("backends/kaggle/", "Kaggle"),
    ("backends/local/", "The local backend"),
    ("backends/ray/", "The Ray backend"),
    ("backends/", "Backends"),
    ("registry/", "The run registry"),
    ("", "Commands"),
]


@dataclass(frozen=True)
class Entry:
    message: str
    hint: str
    where: str  # path:line inside toolkit/


def error_classes() -> set[str]:
    """The names of ToolkitError and every class derived from it in the package, plus the output contract's."""
    bases: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and not any(k in str(path) for k in KERNEL_CODE):
                bases.setdefault(node.name, set()).update(b.id for b in node.bases if isinstance(b, ast.Name))
    found = {"ToolkitError", "OutputError"}
    while True:
        more = {name for name, parents in bases.items() if parents & found} - found
        if not more:
            return found
        found |= more


def texts(node: ast.AST) -> list[str]:
    """The message(s) an expression makes, `…` for each part only known when it runs; [] when none is written."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return ["".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = texts(node.left), texts(node.right)
        if left or right:
            return [a + b for a in (left or ["…"]) for b in (right or ["…"])]
    if isinstance(node, ast.IfExp):
        return texts(node.body) + texts(node.orelse)
    return []


def entries() -> list[Entry]:
    classes = error_classes()
    found: list[Entry] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE).as_posix()
        kernel = any(where.startswith(k) for k in KERNEL_CODE)
        tree = ast.parse(path.read_text())
        for function in [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]:
            local = {a.arg for a in function.args.args} & {"error"} if not isinstance(function, ast.Module) else set()
            for node in ast.walk(function):
                if not (isinstance(node, ast.Call) and node.args):
                    continue
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                raised = kernel and any(isinstance(p, ast.Raise) and p.exc is node for p in ast.walk(function))
                if name in classes or name in local or raised:
                    hint = node.args[1] if len(node.args) > 1 else next(
                        (k.value for k in node.keywords if k.arg == "hint"), None)
                    hints = texts(hint) if hint is not None else [""]
                    for message in texts(node.args[0]):
                        if not any(c.isalpha() for c in message + "".join(hints)):
                            continue  # nothing written in the code to show
                        found.append(Entry(message, " / ".join(hints), f"{where}:{node.lineno}"))
    unique = {(e.message, e.hint): e for e in found}  # a function visited inside its module counts once
    return sorted(unique.values(), key=lambda e: (group_of(e.where)[0], e.message.lower()))


def group_of(where: str) -> tuple[int, str]:
    return next((i, title) for i, (prefix, title) in enumerate(GROUPS) if where.startswith(prefix))


def code(text: str) -> str:
    """Text as one code span, whatever backticks it holds."""
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{' '.join(text.split())}{pad}{fence}"


def catalogue_markdown() -> str:
    lines, current = [], None
    for entry in entries():
        title = group_of(entry.where)[1]
        if title != current:
            lines += ["", f"### {title}", ""]
            current = title
        fix = f" **Fix:** {inline(entry.hint)}" if entry.hint.strip() else ""
        lines.append(f"- {code('error: ' + entry.message if not entry.where.startswith(KERNEL_CODE) else entry.message)}"
                     f"{fix} <small>(`toolkit/{entry.where}`)</small>")
    return "\n".join(lines) + "\n"


def on_page_markdown(markdown, page, config, files):
    """mkdocs hook: the catalogue in place of the mark."""
    if MARK in markdown:
        return markdown.replace(MARK, catalogue_markdown())
    return markdown
