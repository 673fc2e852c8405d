"""Pages made from files outside docs/ at build time: the architecture page is the repository's ARCHITECTURE.md
(one file, read on GitHub and in the site), and the `<!-- fresh-clone -->` mark of a page becomes the sentences
bench/fresh_clone.py writes into the README, from bench/results/fresh_clone.json. An mkdocs hook."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARK = "<!-- fresh-clone -->"


def architecture_markdown() -> str:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    text = re.sub(r"\]\(docs/([^)]+)\)", r"](\1)", text)  # its links into docs/ point at the site's pages
    note = ("!!! note\n    This page is the repository's `ARCHITECTURE.md`, included when the site is built; "
            "[Design notes](design.md) say why the project has this shape.\n\n")
    first, _, rest = text.partition("\n")
    return f"{first}\n\n{note}{rest}"


def fresh_clone_summary() -> str:
    spec = importlib.util.spec_from_file_location("fresh_clone_bench", ROOT / "bench" / "fresh_clone.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench.summary(json.loads((ROOT / "bench" / "results" / "fresh_clone.json").read_text()))


def on_files(files, config):
    from mkdocs.structure.files import File

    files.append(File.generated(config, "architecture.md", content=architecture_markdown()))
    return files


def on_page_markdown(markdown, page, config, files):
    return markdown.replace(MARK, fresh_clone_summary()) if MARK in markdown else markdown
