"""Jupytext's percent format (`py:percent`) read into cells as jupytext 1.19 reads a Python script, without
importing jupytext (whose package import pulls in Jupyter's contents manager, tornado and markdown-it: a
quarter of a second at every `kpush`). What templates use: `# %%` code cells, `# %% [markdown]` cells of
`# `-prefixed lines (and `[raw]`), a title and `key=value` or `{json}` options after the marker (`tags=[...]`),
a `# %%` inside a multi-line string left in its cell, jupytext's header (`# ---` YAML, a shebang, a coding
line), commented magics (`# !pip ...`, `# %time`) uncommented as jupytext does, and its blank-line rules.
Options that make jupytext change a cell's code (`language`, `active`, `active-*` tags, frozen cells) are
refused in one line. tests/test_percent.py compares every shipped template and many generated texts with
jupytext itself."""

from __future__ import annotations

import ast
import json
import re
from typing import NamedTuple

from toolkit.core.errors import SpecError

_START = re.compile(r"^\s*#\s*%%(%*)\s(.*)$")
_ALT_START = re.compile(r"^\s*#\s*(%%|<codecell>|In\[[0-9 ]*\]:?)\s*$")
_BLANK = re.compile(r"^\s*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_HEADER = re.compile(r"^---\s*$")
_JUPYTER = re.compile(r"^jupyter\s*:\s*$")
_ENCODING = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-_.a-zA-Z0-9]+)")
_IDENTIFIER = re.compile(r"^[a-zA-Z_\.]+[a-zA-Z0-9_\.]*$")
_KEY = re.compile(r"^[a-zA-Z0-9_\.@/-]+$")
# Jupyter magics as jupytext's magics.py recognizes them in Python (commented once or more, or not).
_MAGIC_ESCAPE = re.compile(r"^\s*(# |#)*(%|%%|%%%)[a-zA-Z](.*)#\s*escape")
_MAGIC_NOESCAPE = re.compile(r"^\s*(# |#)*(%|%%|%%%)[a-zA-Z](.*)#\s*noescape")
_MAGIC = re.compile(r"^\s*(# |#)*(%|%%|%%%)[a-zA-Z]")
_HELP_OR_BASH = re.compile(r"^\s*(?:(?:# |#)+\s*)?(\?|!)\s*[A-Za-z\.\~\$\\\/\{\}]")
_MAGIC_ASSIGN = re.compile(r"^(# |#)*\s*([a-zA-Z_][a-zA-Z_$0-9]*)\s*=\s*(%|%%|%%%|!)[a-zA-Z](.*)")
_HELP = re.compile(r"^\s*(# )*[^\s]*\?\s*$")
_SHELL = re.compile(r"^(# |#)*(cat|cd|cp|mv|rm|rmdir|mkdir|copy|ddir|echo|ls|ldir|ren)($|\s$|\s[^=,])")
_CONTINUED = re.compile(r".*\\\s*$")
_ESCAPED_START = re.compile(r"^(# |#)*(#|# )\+")
_QUOTE_OR_COMMENT = re.compile(r"[\"'#]")
_ANY_MAGIC = re.compile("|".join(f"(?:{p.pattern})" for p in (_MAGIC, _HELP_OR_BASH, _MAGIC_ASSIGN, _HELP, _SHELL)))


class Cell(NamedTuple):
    cell_type: str  # code, markdown or raw
    source: str
    tags: list[str]


def read_cells(text: str) -> list[Cell]:
    """The cells of a percent-format text, as jupytext.reads(text, fmt="py:percent") makes them."""
    lines = text.splitlines()
    cells, pos = _header(lines)
    quoted = _quoted(lines, pos)  # each cell starts outside any string, so one reading serves them all
    while pos < len(lines):
        cell, pos = _read_cell(lines, pos, quoted)
        cells.append(cell)
    return cells


def _header(lines: list[str]) -> tuple[list[Cell], int]:
    """Jupytext's header: a shebang and coding line, then a `# ---` YAML block; its `jupyter:` part is notebook
    metadata (dropped here, as the toolkit writes its own), the rest a raw cell."""
    header: list[str] = []
    in_jupyter = started = ended = False
    start, i = 0, -1
    for i, line in enumerate(lines):
        if i == 0 and line.startswith("#!"):
            start = 1
            continue
        if (i == 0 or (i == 1 and not _ENCODING.match(lines[0]))) and _ENCODING.match(line):
            if _ENCODING.match(line).group(1) != "utf-8":
                raise SpecError(f"a template's coding line says {_ENCODING.match(line).group(1)}",
                                "save it as utf-8")
            start = i + 1
            continue
        if not line.startswith("#"):
            break
        line = _uncomment(line)
        if _HEADER.match(line):
            if started:
                ended = True
                break
            started = True
            continue
        if not started and line.strip():
            break
        if _JUPYTER.match(line):
            in_jupyter = True
        elif line and not line[0].isspace():
            in_jupyter = False
        if not in_jupyter:
            header.append(line)
    if not ended:
        return [], start
    if len(lines) > i + 1 and _BLANK.match(_uncomment(lines[i + 1])):
        i += 1
    return ([Cell("raw", "\n".join(["---", *header, "---"]), [])] if header else []), i + 1


def _read_cell(lines: list[str], pos: int, quoted: list[bool]) -> tuple[Cell, int]:
    """The cell starting at lines[pos] (a marker, or the text before the first one) and where the next starts."""
    marked = bool(_START.match(lines[pos]))
    metadata = _options(_uncomment(lines[pos])) if marked else {}
    cell_type = metadata.get("cell_type", "code")
    end, next_cell = _cell_end(lines, pos, cell_type, quoted)
    start = pos + 1 if marked or _ALT_START.match(lines[pos]) else pos
    content = _markdown_string(lines[start:end]) if cell_type != "code" else None
    if content is None:
        content = _uncomment_magics(lines[start:end], quoted[start:end])
        content = _unescape_starts(content) if cell_type == "code" else [_uncomment(line) for line in content]
    return Cell(cell_type, "\n".join(content), metadata.get("tags", [])), next_cell


def _options(marker: str) -> dict:
    """A marker's cell type and options: `[markdown] tags=["x"]`, `title {"tags": ["x"]}` (jupytext's
    text_to_metadata with a title allowed)."""
    text = marker[marker.find("%%") + 2:].strip()
    brace, equal = text.find("{"), text.find("=")
    if brace < 0 or 0 <= equal < brace:
        words = text[:equal].split(" ") if equal >= 0 else text.split(" ")
        while words and not words[-1]:
            words.pop()
        if words and equal >= 0:
            words.pop()  # the first key
        while words and (not words[-1].strip() or words[-1].startswith(".")):
            words.pop()
        title = " ".join(words)
        metadata = _key_values(text[len(title):])
    else:
        title, metadata = text[:brace].strip(), _loads(text[brace:], catch=True)
        if not isinstance(metadata, dict):
            metadata = {}
    for cell_type in ("markdown", "raw", "md"):
        if f"[{cell_type}]" in title:
            metadata["cell_type"] = "markdown" if cell_type == "md" else cell_type
            break
    return _checked(marker, metadata)


def _checked(marker: str, metadata: dict) -> dict:
    tags = metadata.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SpecError(f"template line '{marker.strip()}': tags must be a list of strings",
                        'write them as tags=["parameters"]')
    changing = [k for k in ("language", "active") if k in metadata] + [t for t in tags if t.startswith("active-")]
    if metadata.get("cell_type", "code") not in ("code", "markdown", "raw"):
        changing.append(f"cell_type={metadata['cell_type']!r}")
    if isinstance(metadata.get("run_control"), dict) and metadata["run_control"].get("frozen") is True:
        changing.append("run_control")
    if changing:
        raise SpecError(f"template line '{marker.strip()}': the toolkit does not support jupytext's "
                        f"{', '.join(changing)} in templates", "write the cell as plain Python or markdown")
    return metadata


def _key_values(text: str) -> dict:
    """`key1=value1 key2=value2`, values JSON or Python literals (jupytext's parse_key_equal_value)."""
    text = text.strip()
    if not text:
        return {}
    space = text.rfind(" ")
    if not text.startswith("--") and _IDENTIFIER.match(text[space + 1:]):
        result = {text[space + 1:]: None}
        if space > 0:
            result.update(_key_values(text[:space]))
        return result
    equal = None
    while True:
        equal = text.rfind("=", None, equal)
        if equal < 0:
            return {"incorrectly_encoded_metadata": text}
        before = text[:equal].rstrip().rfind(" ")
        key = text[before + 1:equal].strip()
        if not _KEY.match(key):
            continue
        try:
            value = _loads(text[equal + 1:])
        except (ValueError, SyntaxError):
            continue
        metadata = _key_values(text[:before]) if before > 0 else {}
        metadata[key] = value
        return metadata


def _loads(text: str, catch: bool = False):
    """JSON, else a Python literal (jupytext's relax_json_loads)."""
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if not catch:
            raise
    return {"incorrectly_encoded_metadata": text}


def _cell_end(lines: list[str], pos: int, cell_type: str, quoted: list[bool]) -> tuple[int, int]:
    """Where the cell starting at `pos` ends (a blank line, or two after code, before the next marker belong to
    neither) and where the next cell starts. A marker inside a multi-line string, or inside a fenced block of a
    markdown cell, starts no cell."""
    next_cell, fence = len(lines), None
    for i in range(pos, len(lines)):
        line = lines[i]
        if quoted[i]:
            continue
        if cell_type != "code":
            text = _uncomment(line)
            if fence:
                if _closes(text, fence):
                    fence = None
                continue
            opening = _opening(text)
            if opening and any(_closes(_uncomment(later), opening) for later in lines[i + 1:]):
                fence = opening
                continue
        if i > pos and (_START.match(line) or _ALT_START.match(line)):
            next_cell = i
            break
    before = lines[max(pos, next_cell - 3):next_cell]
    if len(before) == 3 and not _BLANK.match(before[0]) and _BLANK.match(before[1]) and _BLANK.match(before[2]):
        return next_cell - 2, next_cell
    if next_cell > pos and lines[next_cell - 1] == "":
        return next_cell - 1, next_cell
    return next_cell, next_cell


def _opening(text: str) -> tuple[str, int] | None:
    match = _FENCE.match(text)
    if not match or (match.group(1)[0] == "`" and "`" in match.group(2)):
        return None
    return match.group(1)[0], len(match.group(1))


def _closes(text: str, fence: tuple[str, int]) -> bool:
    match = _FENCE.match(text)
    return bool(match) and match.group(1)[0] == fence[0] and len(match.group(1)) >= fence[1] \
        and not match.group(2).strip()


def _markdown_string(lines: list[str]) -> list[str] | None:
    """A markdown or raw cell written as one triple-quoted string: its text (else None)."""
    content = "\n".join(lines).strip()
    for prefix in ("", "r", "R"):
        for quote in ('"""', "'''"):
            left = prefix + quote
            if content.startswith(left) and content.endswith(quote) and len(content) >= len(left + quote):
                content = content[len(left):-len(quote)]
                content = content[1:] if content.startswith("\n") else content
                return (content[:-1] if content.endswith("\n") else content).splitlines()
    return None


def _uncomment(line: str) -> str:
    return line[2:] if line.startswith("# ") else line[1:] if line.startswith("#") else line


def _unindented_uncomment(line: str) -> str:
    body = line.lstrip()
    return line[: len(line) - len(body)] + _uncomment(body)


def _is_magic(line: str) -> bool:
    """jupytext's is_magic for Python: `# ... escape` forces a magic, `# ... noescape` forbids one."""
    return bool(_ANY_MAGIC.match(line)) and (bool(_MAGIC_ESCAPE.match(line)) or not _MAGIC_NOESCAPE.match(line))


def _uncomment_magics(lines: list[str], quoted: list[bool]) -> list[str]:
    """Commented magics (`# %time`, `# !pip list`, `# ls`) uncommented once, outside strings (`quoted`: whether
    a string is open where each line starts)."""
    out, continued = [], False
    for line, in_string in zip(lines, quoted):
        if not in_string and (continued or _is_magic(line)):
            out.append(_unindented_uncomment(line))
            continued = bool(_CONTINUED.match(line))
        else:
            out.append(line)
    return out


def _unescape_starts(lines: list[str]) -> list[str]:
    """`# # +` back to `# +` (jupytext escapes the light format's cell marker), outside strings."""
    if not any(_ESCAPED_START.match(line) for line in lines):
        return lines
    return [_unindented_uncomment(line) if not in_string and _ESCAPED_START.match(line)
            and _ESCAPED_START.match(_unindented_uncomment(line)) else line
            for line, in_string in zip(lines, _quoted(lines, 0))]


def _quoted(lines: list[str], pos: int) -> list[bool]:
    """For each line, whether a string opened on an earlier line (from `pos` on) is still open where it starts."""
    quoted, quotes = [False] * len(lines), _Quotes()
    for i in range(pos, len(lines)):
        quoted[i] = quotes.open()
        quotes.read(lines[i])
    return quoted


class _Quotes:
    """Whether the next line starts inside a string: Python's quotes, read line by line (jupytext's
    StringParser)."""

    def __init__(self) -> None:
        self.single: str | None = None
        self.triple: str | None = None

    def open(self) -> bool:
        return bool(self.single or self.triple)

    def read(self, line: str) -> None:
        if not self.open() and line.lstrip().startswith("#"):
            return
        triple_start = -1
        for found in _QUOTE_OR_COMMENT.finditer(line):  # the only characters that change the state
            i, char = found.start(), found.group()
            if self.single is None and self.triple is None and char == "#":
                break
            if char == "#" or line[i - 1:i] == "\\":
                continue
            if self.single == char:
                self.single = None
            elif self.single is not None:
                continue
            elif line[i - 2:i + 1] == 3 * char and i >= triple_start + 3:
                if self.triple == char:
                    self.triple, triple_start = None, i
                elif self.triple is None:
                    self.triple, triple_start = char, i
            elif self.triple is None:
                self.single = char
        self.single = None
