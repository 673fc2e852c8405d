"""nbformat 4 notebooks as plain data, built and written without importing nbformat (whose validator pulls in
jsonschema: a tenth of a second at every `kpush`). A notebook is a `Node`: a dict whose keys also read as
attributes, like nbformat's NotebookNode, so either kind goes wherever a notebook does. `notebook_text` writes one
byte for byte as nbformat.write does; a notebook of the shape rendering makes is checked here, any other (a
user's own .ipynb, one read back from disk) by nbformat's full validation."""

from __future__ import annotations

import json
import os
import re

NBFORMAT, NBFORMAT_MINOR = 4, 5
CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# The keys of each kind of cell as rendering makes them (nbformat.v4's new_*_cell).
CELL_KEYS = {"code": {"id", "cell_type", "metadata", "source", "outputs", "execution_count"},
             "markdown": {"id", "cell_type", "metadata", "source"},
             "raw": {"id", "cell_type", "metadata", "source"}}


class Node(dict):
    """A dict whose keys read and write as attributes too (nbformat's NotebookNode, without nbformat)."""

    def __getattr__(self, key: str):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError:
            raise AttributeError(key) from None


def node(value):
    """`value` with every dict in it a Node (nbformat's from_dict)."""
    if isinstance(value, dict):
        return Node({key: node(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return [node(item) for item in value]
    return value


def new_notebook(cells: list[Node], metadata: dict) -> Node:
    return Node(nbformat=NBFORMAT, nbformat_minor=NBFORMAT_MINOR, metadata=node(metadata), cells=cells)


def new_cell(cell_type: str, source: str, metadata: dict | None = None, taken: set[str] | None = None) -> Node:
    """A cell as nbformat.v4's new_code_cell / new_markdown_cell / new_raw_cell make it, with a random id (none
    of `taken`: the ids already in its notebook)."""
    cell = Node(id=_cell_id(taken or set()), cell_type=cell_type, metadata=node(metadata or {}), source=source)
    if cell_type == "code":
        cell.update(outputs=[], execution_count=None)
    return cell


def _cell_id(taken: set[str]) -> str:
    while (made := os.urandom(4).hex()) in taken:  # nbformat's: 8 hex digits of a uuid4
        pass
    return made


def notebook_text(notebook: dict) -> str:
    """The .ipynb file's text, as nbformat.write writes it (one-space indent, sorted keys, text as lists of
    lines, a final newline), after checking the notebook is valid nbformat 4 (nbformat.ValidationError if not)."""
    if not rendered_shape(notebook):
        import nbformat

        nbformat.validate(notebook)
        text = nbformat.writes(nbformat.from_dict(notebook))
        return text if text.endswith("\n") else text + "\n"
    on_disk = dict(notebook, cells=[dict(cell, source=_lines(cell["source"])) for cell in notebook["cells"]])
    return json.dumps(on_disk, indent=1, sort_keys=True, separators=(",", ": "), ensure_ascii=False) + "\n"


def _lines(source: str | list[str]) -> list[str]:
    return source.splitlines(True) if isinstance(source, str) else source


def rendered_shape(notebook) -> bool:
    """Whether `notebook` has the shape rendering makes, which nbformat 4.5's schema accepts: cells of the
    keys nbformat gives them, unique ids, no outputs, metadata of tags and the toolkit's block and template
    names only, a kernelspec and language name. Anything else is left to nbformat's validation."""
    if not isinstance(notebook, dict) or set(notebook) != {"cells", "metadata", "nbformat", "nbformat_minor"}:
        return False
    if notebook["nbformat"] != NBFORMAT or notebook["nbformat_minor"] != NBFORMAT_MINOR:
        return False
    cells = notebook["cells"]
    if not isinstance(cells, list) or not _notebook_metadata(notebook["metadata"]):
        return False
    ids = [cell.get("id") if isinstance(cell, dict) else None for cell in cells]
    return len(set(ids)) == len(ids) and all(_cell(cell) for cell in cells)


def _notebook_metadata(metadata) -> bool:
    if not isinstance(metadata, dict) or not set(metadata) <= {"kernelspec", "language_info"}:
        return False
    spec, language = metadata.get("kernelspec"), metadata.get("language_info")
    return ((spec is None or (isinstance(spec, dict) and {"name", "display_name"} <= set(spec)
                              and _strings(spec.values())))
            and (language is None or (isinstance(language, dict) and set(language) == {"name"}
                                      and _strings(language.values()))))


def _cell(cell) -> bool:
    if not isinstance(cell, dict) or set(cell) != CELL_KEYS.get(str(cell.get("cell_type")), ()):
        return False
    if not (isinstance(cell["id"], str) and CELL_ID.match(cell["id"])):
        return False
    source = cell["source"]
    if not (isinstance(source, str) or (isinstance(source, list) and _strings(source))):
        return False
    if cell["cell_type"] == "code" and (cell["outputs"] != [] or cell["execution_count"] is not None):
        return False
    return _cell_metadata(cell["metadata"])


def _cell_metadata(metadata) -> bool:
    if not isinstance(metadata, dict) or not set(metadata) <= {"tags", "toolkit"}:
        return False
    tags, toolkit = metadata.get("tags", []), metadata.get("toolkit", {})
    return (isinstance(tags, list) and _strings(tags) and len(set(tags)) == len(tags)
            and all(tag and "," not in tag for tag in tags)
            and isinstance(toolkit, dict) and _strings(toolkit)
            and all(isinstance(value, (str, bool)) for value in toolkit.values()))


def _strings(values) -> bool:
    return all(isinstance(value, str) for value in values)
