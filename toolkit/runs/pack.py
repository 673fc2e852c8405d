"""Packing: one kernel trains several runs at once, one per GPU (Kaggle's T4 x2 has two).

Each packed run keeps its own row in the store (its spec, metrics and outputs), with `host` naming
the pack kernel; pushing, status and downloads go through that kernel, and the run's outputs live
in `<run-slug>/` inside it. Each run also ends on its own: the kernel writes `pack.json` (COMPLETE or
ERROR and the cause, per run), so one run's failure never costs its partner's finished outputs.
"""

from __future__ import annotations

import hashlib

from toolkit.core.errors import SpecError
from toolkit.kernel.folders import write_kernel_folder
from toolkit.kernel.render import kernel_metadata, notebook_code, render_pack_notebook, render_train_notebook
from toolkit.project import Project
from toolkit.registry.records import Run
from toolkit.runs.plan import Planned, train_options
from toolkit.specs.spec import make_slug

MAX_PACK = 4


def pack_slug(members: list[Planned]) -> str:
    key = ",".join(sorted(m.spec.slug for m in members))
    return make_slug(f"pack {len(members)}", hashlib.sha256(key.encode()).hexdigest()[:8])


def check_size(size: int) -> None:
    """--pack: runs per kernel, one per GPU."""
    if not 1 <= size <= MAX_PACK:
        raise SpecError(f"--pack must be between 1 and {MAX_PACK}, not {size}")


def pack_runs(project: Project, recorded: list[tuple[Run, str]], planned: list[Planned],
              groups: list[list[str]]) -> list[tuple[str, list[str]]]:
    """Render one pack kernel for each group of two or more newly recorded runs (slugs, as
    sessions.plan_sessions paired them) and mark its runs. Returns (pack slug, member slugs) for each pack."""
    by_slug = {p.spec.slug: p for p in planned}
    fresh = {run.slug: run for run, action in recorded if action == "new"}
    hosts = []
    for group in groups:
        members = [slug for slug in group if slug in fresh]
        if len(members) < 2:
            continue
        slug = _render_pack(project, [by_slug[m] for m in members])
        project.store.set_host([fresh[m].id for m in members], slug)
        hosts.append((slug, members))
    return hosts


def _render_pack(project: Project, members: list[Planned]) -> str:
    slug = pack_slug(members)
    codes = {m.spec.slug: notebook_code(render_train_notebook(m.spec, m.weights, out_dir=m.spec.slug,
                                                               labels=m.labels, recipe=m.recipe))
             for m in members}
    sources = tuple(sorted({s for m in members for s in m.metadata.get("dataset_sources", [])}))
    write_kernel_folder(project.config.kernels_dir / slug, render_pack_notebook(slug, codes),
                        kernel_metadata(slug, members[0].spec.competition, train_options(project, sources)))
    return slug
