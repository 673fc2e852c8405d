"""The command reference, generated at build time from the console scripts themselves: every script that
pyproject.toml installs, its typer app (toolkit.cli.main.APPS), every command of it with its usage line, and every
argument and option with its help (as `--help` shows it, rich markup resolved), type and default. An mkdocs hook:
the page `reference.md` exists only in the built site, so it cannot drift from the code."""

from __future__ import annotations

import html
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = "reference.md"

INTRO = """# Command reference

Every console script, command, argument and option, with the help text `--help` prints. This page is generated
from the scripts themselves each time the site is built (`docs/hooks/reference.py`), so it always matches the
installed toolkit; [Commands](commands.md) says what each one does and prints.

Every command also takes `--debug` anywhere on its line (or `TOOLKIT_DEBUG=1`): a mistake then shows its traceback
instead of one line. Exit codes: 0 done; 2 a mistake or a failed call; 3 a run the command waited for or reports
ended in ERROR or ran past the session limit; 130 interrupted; 1 a bug.
"""


def scripts() -> dict[str, object]:
    """Console script name -> its typer app, for every script pyproject.toml installs."""
    from toolkit.cli.main import APPS

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    missing = sorted(set(declared) - set(APPS))
    assert not missing, f"console scripts without an app in toolkit.cli.main.APPS: {missing}"
    return {name: APPS[name] for name in declared}


def commands(name: str, app) -> list[tuple[str, object]]:
    """(the words that run it, click command) for each command of a console script, in the app's order."""
    import typer.main

    made = typer.main.get_command(app)
    if hasattr(made, "commands"):
        return [(f"{name} {sub}", command) for sub, command in made.commands.items() if not command.hidden]
    return [(name, made)]


def plain(text: str | None) -> str:
    """What `--help` shows of a help string: rich markup resolved (`\\[x]` is a literal `[x]`)."""
    from rich.text import Text

    return Text.from_markup(text or "").plain if text else ""


def inline(text: str, table: bool = False) -> str:
    """Help text as Markdown: `code` spans kept, everything else shown literally (<, *, _, [ are not markup)."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code spans at all
        parts = [text]
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"`{part}`")
        else:
            part = re.sub(r"([\\*_\[\]])", r"\\\1", html.escape(part, quote=False))
            out.append(part.replace("|", "\\|") if table else part)
    return " ".join("".join(out).split())


def param_rows(command, ctx) -> tuple[list[str], list[str]]:
    """Markdown table rows for the command's arguments and options."""
    arguments, options = [], []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        kind = param.display_type(ctx).strip("<>")
        notes = [n for n, on in (("required", param.required), ("repeatable", param.multiple)) if on]
        help_text = inline(plain(getattr(param, "help", "")), table=True)
        if param.param_type_name == "argument":
            name = f"`{param.name.upper()}`" + ("..." if param.nargs == -1 else "")
            arguments.append(f"| {name} | `{kind}` | {', '.join(notes)} | {help_text} |")
        else:
            names = ", ".join(f"`{o}`" for o in param.opts)
            if param.secondary_opts:
                names += " / " + ", ".join(f"`{o}`" for o in param.secondary_opts)
            kind = "flag" if param.is_flag else f"`{kind}`"
            options.append(f"| {names} | {kind} | {default_of(param, notes)} | {help_text} |")
    return arguments, options


def default_of(param, notes: list[str]) -> str:
    """The default as the user sees it: the flag in force, a value, or nothing set."""
    shown = list(notes)
    default = param.default
    if param.is_flag and param.secondary_opts:
        if default is not None:
            shown.append(f"`{param.opts[0] if default else param.secondary_opts[0]}`")
    elif param.is_flag:
        shown.append("off" if not default else "on")
    elif default not in (None, (), []):
        shown.append(f"`{default}`")
    return ", ".join(shown) or "-"


def command_section(words: str, command, level: str) -> str:
    from typer._click import Context

    ctx = Context(command, info_name=words)
    usage = command.get_usage(ctx).strip()
    lines = [f"{level} {words}", "", inline(plain(command.help)), "", "```text", usage, "```", ""]
    arguments, options = param_rows(command, ctx)
    if arguments:
        lines += ["| argument | type | | help |", "|---|---|---|---|", *arguments, ""]
    if options:
        lines += ["| option | type | default | help |", "|---|---|---|---|", *options, ""]
    return "\n".join(lines)


def reference_markdown() -> str:
    import typer.main

    sections = [INTRO]
    for name, app in scripts().items():
        listed = commands(name, app)
        grouped = hasattr(typer.main.get_command(app), "commands")
        if grouped:
            links = ", ".join(f"[`{words}`](#{words.replace(' ', '-')})" for words, _ in listed)
            sections.append(f"## {name}\n\n{inline(plain(app.info.help))} Commands: {links}.\n")
            sections += [command_section(words, command, "###") for words, command in listed]
        else:
            sections += [command_section(words, command, "##") for words, command in listed]
    return "\n".join(sections)


def on_files(files, config):
    """mkdocs hook: add the generated reference page to the site's files."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=reference_markdown()))
    return files
