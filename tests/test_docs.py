"""The documentation: the site builds strictly and holds every option of every console script (its command
reference is generated from them); no `--help` loses bracketed text to rich's markup; the README is the short
page a newcomer reads, with its numbers from the bench that measures them; and the shell examples of the README
and the docs pages run as written, each marked before it: `<!-- run -->` (here), `<!-- run: slow -->` (it trains:
make test-all) or `<!-- not run: why -->` (it needs Kaggle, a GPU, a cluster, or it is the suite itself)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = ("sh", "console")
MARK = re.compile(r"<!-- (run|run: slow|not run: .+) -->")
sys.path.insert(0, str(ROOT / "docs" / "hooks"))


@dataclass
class Block:
    page: Path
    line: int
    language: str
    text: str
    mark: str  # "run", "run: slow", "not run: ...", or "" when none

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page, each with its language and the mark on the line before it."""
    found, lines, i = [], page.read_text().splitlines(), 0
    while i < len(lines):
        opened = re.match(r"^(\s*)```(\S*)\s*$", lines[i])
        if not opened:
            i += 1
            continue
        indent, start = opened.group(1), i
        i += 1
        while not re.match(rf"^{indent}```\s*$", lines[i]):
            i += 1
        mark = MARK.fullmatch(lines[start - 1].strip()) if start else None
        text = "\n".join(line[len(indent):] for line in lines[start + 1:i])
        found.append(Block(page, start + 1, opened.group(2), text, mark.group(1) if mark else ""))
        i += 1
    return found


ALL = [b for page in PAGES for b in blocks(page)]


def test_every_block_says_its_language_and_every_shell_example_whether_it_runs():
    assert len(ALL) > 40
    assert not [b.where for b in ALL if not b.language], "a fenced block without a language"
    assert not [b.where for b in ALL if b.language in SHELL and not b.mark], "a shell block without a run mark"
    assert not [b.where for b in ALL if b.mark and b.language not in SHELL], "a run mark on a block that is no shell"
    assert {"sh", "console", "text", "toml", "diff"} <= {b.language for b in ALL}


# --- the README ---

README = (ROOT / "README.md").read_text()


def test_the_readme_is_short_and_starts_with_the_setup_and_the_loop():
    assert len(README.encode()) <= 12 * 1024
    first_40, first_60 = "\n".join(README.splitlines()[:40]), "\n".join(README.splitlines()[:60])
    assert "make demo" in first_40 and "make test" in first_40
    for command in ("kpush train", "kpull outputs", "ksubmit ensemble"):
        assert command in first_60, command
    assert "](docs/report-demo.png)" in README


def test_the_readme_links_to_pages_that_exist():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    assert len(links) > 10
    assert not [link for link in links if not link.startswith("http") and not (ROOT / link).exists()]


def fresh_clone():
    import importlib.util

    spec = importlib.util.spec_from_file_location("fresh_clone_bench", ROOT / "bench" / "fresh_clone.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_the_readme_numbers_are_the_fresh_clone_bench_s():
    """Written by bench/fresh_clone.py from its results file, never by hand: the README says what the file says."""
    bench = fresh_clone()
    data = json.loads((ROOT / "bench" / "results" / "fresh_clone.json").read_text())
    assert bench.readme_block(data) in README
    assert README.count(bench.START) == 1 and README.count(bench.END) == 1


def test_the_fresh_clone_summary_says_what_was_measured(tmp_path):
    bench = fresh_clone()
    data = {"measured": True, "date": "2026-12-01", "commit": "0123456789abcdef", "cpus": 2,
            "demo": {"seconds": 207.4, "exit": 0, "ensemble_score": 0.9711, "best_single": 0.9422,
                     "results_md": "| slug | TTA err |\n|---|---|\n| resnet18-7e8f2d21 | 0.0520 |\n"},
            "test": {"seconds": 459.0, "exit": 0, "summary": "904 passed, 19 deselected"}}
    text = bench.summary(data)
    assert "`make demo` took 3 min 27 s" in text and "`make test` then took 7 min 39 s (904 passed" in text
    assert "scored 0.9711 against 0.9422" in text and "| resnet18-7e8f2d21 | 0.0520 |" in text
    readme = tmp_path / "README.md"
    readme.write_text(f"top\n{bench.START}\nold numbers\n{bench.END}\nbottom\n")
    bench.rewrite_readme(data, readme)
    assert readme.read_text() == f"top\n{bench.readme_block(data)}\nbottom\n"
    assert "not measured" in bench.summary({"measured": False})


# --- the site and the command reference ---

@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    done = subprocess.run([str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def text_of(page: Path) -> str:
    import html

    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.read_text())).split())


def console_commands():
    """(words, click command) for every command of every console script, as the reference hook walks them."""
    import reference

    return [(words, command) for name, app in reference.scripts().items()
            for words, command in reference.commands(name, app)]


def test_every_option_of_every_console_script_is_in_the_built_site(site):
    import reference

    page = text_of(site / "reference" / "index.html")
    commands = console_commands()
    assert {w.split()[0] for w, _ in commands} == {"kpush", "kpull", "ksubmit", "kstatus", "kstop", "klogs"}
    assert len(commands) >= 10
    for words, command in commands:
        assert f"Usage: {words}" in page, words
        for param in command.params:
            for name in [*param.opts, *param.secondary_opts]:
                shown = name.upper() if param.param_type_name == "argument" else name
                assert shown in page, f"{words} {name}"
            help_text = " ".join(reference.plain(getattr(param, "help", "")).split())
            assert help_text in page, f"{words} {param.name}: {help_text}"


def test_the_site_has_every_page_of_the_nav_and_the_generated_ones(site):
    import yaml

    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text().split("\nnav:", 1)[1].join(["nav:", ""]))["nav"]
    pages = []
    for entry in nav:
        for value in entry.values():
            pages += [value] if isinstance(value, str) else [v for sub in value for v in sub.values()]
    assert len(pages) == 18 and {"reference.md", "architecture.md", "design.md", "troubleshooting.md"} <= set(pages)
    for name in pages:
        built = site / "index.html" if name == "index.md" else site / name.removesuffix(".md") / "index.html"
        assert built.is_file(), name
    assert "One run, end to end" in text_of(site / "architecture" / "index.html")  # ARCHITECTURE.md, included
    errors = text_of(site / "troubleshooting" / "index.html")
    assert "error: concurrency must be at least 1" in errors and "no competitions in" in errors
    assert "not measured for this version yet" in text_of(site / "getting-started" / "index.html") or \
        "Measured by" in text_of(site / "getting-started" / "index.html")


def test_the_error_catalogue_covers_the_errors_users_meet():
    import errors

    found = errors.entries()
    assert len(found) > 150
    messages = " ".join(e.message for e in found)
    for known in ("unknown run parameter", "is not a block of", "no finished runs for", "cannot reach the Ray cluster"):
        assert known in messages, known
    assert all(errors.group_of(e.where) for e in found)


# --- --help and rich markup ---

def help_sources(command) -> list[str]:
    return [command.help or "", *(getattr(p, "help", "") or "" for p in command.params)]


def test_no_help_loses_bracketed_text_to_rich_markup():
    """Every help string, with `\\[` read as the `[` it stands for, appears whole in its command's --help: an
    unescaped `[defaults]` would be eaten by rich as a markup tag."""
    from toolkit.cli.main import APPS

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOOLKIT_", "KAGGLE_"))}
    env.update(COLUMNS="2000", TERMINAL_WIDTH="2000")
    groups = {words.split()[0]: [APPS[words.split()[0]].info.help] for words, _ in console_commands() if " " in words}
    helps = [(words, help_sources(command)) for words, command in console_commands()] + list(groups.items())
    checked = 0
    for words, sources in helps:
        shown = subprocess.run([str(BIN / words.split()[0]), *words.split()[1:], "--help"], env=env,
                               capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        output = " ".join(re.sub(r"[│╭╮╰╯─]", " ", shown.stdout).split())
        for source in sources:
            meant = " ".join(source.replace("\\[", "[").split())
            assert meant in output, f"{words} --help shows {meant!r} otherwise"
            checked += "[" in meant
    assert checked >= 1  # kpush sweep's "a [defaults] table and [[run]] rows"


# --- the shell examples ---

def runnable(slow: bool) -> dict[Path, list[Block]]:
    marks = ("run", "run: slow") if slow else ("run",)
    by_page: dict[Path, list[Block]] = {}
    for block in ALL:
        if block.language in SHELL and block.mark in marks:
            by_page.setdefault(block.page, []).append(block)
    if slow:
        by_page = {page: found for page, found in by_page.items() if any(b.mark == "run: slow" for b in found)}
    return by_page


def script_of(block: Block) -> tuple[str, list[str]]:
    """The commands a block runs and, for a console block, the lines they must print."""
    if block.language == "sh":
        return block.text, []
    commands, expected = [], []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            commands.append(line[2:])
        elif line.strip():
            expected.append(line)
    return "\n".join(commands), expected


def project_for(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A fresh project folder holding the repository's sweeps and tests (the examples read them) and its .venv;
    the toolkit's scripts first on PATH; no toolkit or Kaggle settings, and no Kaggle credentials to be found."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("sweeps", "tests"):
        (project / name).symlink_to(ROOT / name)
    (project / ".venv").symlink_to(BIN.parent)
    (tmp_path / "kaggle-config").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOOLKIT_", "KAGGLE_", "VIRTUAL_ENV"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", COLUMNS="200",
               KAGGLE_CONFIG_DIR=str(tmp_path / "kaggle-config"))
    return project, env


def run_examples(found: list[Block], tmp_path: Path, timeout: float) -> None:
    project, env = project_for(tmp_path)
    for block in found:
        script, expected = script_of(block)
        done = subprocess.run(["bash", "-c", f"set -eo pipefail\n{script}"], cwd=project, env=env,
                              capture_output=True, text=True, timeout=timeout)
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{block.where} exited {done.returncode}:\n{output[-4000:]}"
        flat = " ".join(output.split())
        for line in expected:  # `…` in a printed line stands for anything (a path of the test's own)
            pattern = ".*?".join(re.escape(part) for part in " ".join(line.split()).split("…"))
            assert re.search(pattern, flat), f"{block.where} did not print {line!r}:\n{output[-4000:]}"


FAST = runnable(slow=False)
SLOW = runnable(slow=True)


@pytest.mark.parametrize("page", sorted(FAST), ids=lambda p: p.name)
def test_the_examples_run_as_written(page, tmp_path):
    run_examples(FAST[page], tmp_path, timeout=300)


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(SLOW), ids=lambda p: p.name)
def test_the_examples_that_train_run_as_written(page, tmp_path):
    found = [b for b in ALL if b.page == page and b.language in SHELL and b.mark in ("run", "run: slow")]
    run_examples(found, tmp_path, timeout=1800)
