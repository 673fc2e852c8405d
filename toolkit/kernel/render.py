"""Pure rendering: spec -> notebook and spec -> kernel-metadata; writing the folder is separate."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import nbformat

from toolkit.specs.spec import RunSpec, check_slug, title_for

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"  # package data: ships in the wheel
ENSEMBLE_SOURCE = Path(__file__).resolve().parent / "runtime" / "ensemble.py"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


@dataclass(frozen=True)
class KernelOptions:
    """How a kernel is pushed: who owns it and what it may use."""

    username: str
    gpu: bool = True
    accelerator: str = "NvidiaTeslaT4"
    internet: bool = True
    private: bool = True
    dataset_sources: tuple[str, ...] = ()
    kernel_sources: tuple[str, ...] = ()
    model_sources: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    env.filters["py"] = repr  # parameters become Python literals, never pasted text
    return env


def percent_to_notebook(source: str) -> nbformat.NotebookNode:
    """Turn percent-format text (`# %%` cells, `# %% [markdown]`) into an nbformat 4 notebook."""
    cells, kind, lines = [], "code", []  # text before the first marker is a code cell, as in jupytext

    def flush() -> None:
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(text))
        elif kind == "code" and text:
            cells.append(nbformat.v4.new_code_cell(text))

    for line in source.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        else:
            lines.append(line)
    flush()
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def render_train_notebook(spec: RunSpec, weights: tuple[str, str] | None = None, out_dir: str = ".",
                          labels: dict | None = None) -> nbformat.NotebookNode:
    """`weights`: (dataset 'owner/slug', file name) of pretrained weights the kernel finds among its inputs.
    `labels`: {"csv", "id", "label"} when a CSV labels the training images (competition.labelling), else
    None: the class folders do."""
    from toolkit.competitions.layout import IMAGE_EXTENSIONS

    text = _environment().get_template("train.py.j2").render(
        spec=spec, spec_dict=spec.to_dict(), item=spec.item, batch=spec.batch, weights=weights, out_dir=out_dir,
        identity=run_identity(spec.slug, spec.content_hash), image_extensions=sorted(IMAGE_EXTENSIONS), title=title_for(spec.slug),
        labels=labels)
    return percent_to_notebook(text)


def run_identity(slug: str, spec_hash: str) -> dict[str, str]:
    """What a training kernel writes into its outputs to say which run they belong to."""
    return {"slug": slug, "spec_hash": spec_hash}


def render_pack_notebook(slug: str, members: dict[str, str]) -> nbformat.NotebookNode:
    """A kernel that runs each member's training code (slug -> code) as its own process."""
    text = _environment().get_template("pack.py.j2").render(members=members, title=title_for(slug))
    return percent_to_notebook(text)


def notebook_code(notebook: nbformat.NotebookNode) -> str:
    """A notebook's code cells as one script."""
    return "\n\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code") + "\n"


def render_ensemble_notebook(slug: str, competition: str, members: list[dict], weights: list[float] | None,
                             predict: bool = False) -> nbformat.NotebookNode:
    """`members`: one dict per run (see submit.ensemble_member): where its outputs are, which run they must be
    and its transforms. `predict`: rebuild each member's model and predict on the test images present when
    the kernel runs (code competitions), instead of averaging the stored test probabilities."""
    from toolkit.competitions.layout import IMAGE_EXTENSIONS

    text = _environment().get_template("ensemble.py.j2").render(
        competition=competition, members=members, weights=weights, title=title_for(slug), predict=predict,
        image_extensions=sorted(IMAGE_EXTENSIONS), ensemble_source=ENSEMBLE_SOURCE.read_text().strip())
    return percent_to_notebook(text)


def kernel_metadata(slug: str, competition: str, options: KernelOptions) -> dict:
    """kernel-metadata.json as `kaggle kernels push` reads it; every flag written explicitly."""
    check_slug(slug)
    meta = {
        "id": f"{options.username}/{slug}",
        "title": title_for(slug),
        "code_file": f"{slug}.ipynb",
        "language": "python",
        "kernel_type": "notebook",
        "is_private": options.private,
        "enable_gpu": options.gpu,
        "enable_tpu": False,
        "enable_internet": options.internet,
        "keywords": [],
        "competition_sources": [competition],
        "dataset_sources": list(options.dataset_sources),
        "kernel_sources": list(options.kernel_sources),
        "model_sources": list(options.model_sources),
    }
    if options.gpu:
        meta["machine_shape"] = options.accelerator
    return meta
