"""Rebuilding a lost run registry from the backend (an unreadable file is set aside by registry.damage first).

The backend is the record of what ran. For every kernel rendered in `kernels/` it knows the latest
version (`find_pushed`), its status and its outputs (a pack's `pack.json` says how each run ended), so
a deleted, emptied or damaged `.toolkit/runs.sqlite` costs nothing that was trained: the next command
records those runs again, and pushing the same spec finds it already pushed. Not rebuilt: runs only
rendered (never pushed), ensemble kernels and submissions, which the backend cannot tie back to a run.
"""

from __future__ import annotations

import ast
import json
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from toolkit.registry.damage import file_lock


def ensure(project, say: Callable[[str], None], may_rebuild: bool = True) -> None:
    """Open the registry; when it holds no runs but `kernels/` holds rendered kernels (it was deleted,
    emptied or set aside), rebuild it from the backend, or where it `may_rebuild` not, say how to. `say` gets
    one line for the user."""
    store = project.store
    where = _relative(project, store.path)
    runs = []
    folders = rendered(project) if not store.has_runs() else []
    if folders and may_rebuild:
        with file_lock(store.path):
            if not store.has_runs():  # (another command may have rebuilt it meanwhile)
                runs = rebuild(project, folders)
    states = ", ".join(f"{n} {s}" for s, n in Counter(r.status.value for r in runs).items())
    backend = project.config.backend
    if runs:
        outcome = f"rebuilt {len(runs)} runs from the {backend} backend ({states}); submissions are not rebuilt"
    elif folders and not may_rebuild:
        count = f"{len(folders)} rendered kernel{'s' if len(folders) > 1 else ''}"
        outcome = (f"kernels/ holds {count}: if they were pushed, `kstatus` (without --no-refresh) rebuilds the "
                   f"registry from the {backend} backend")
    else:
        outcome = ""
    if store.set_aside is not None:
        say(f"{where} could not be read ({store.damage}): moved it to {_relative(project, store.set_aside)}, "
            f"delete that once you no longer need it; {outcome or 'the registry starts again empty'}")
    elif outcome:
        say(f"{where} {'had' if runs else 'holds'} no runs: {outcome}")


def rendered(project) -> list[Path]:
    folder = project.config.kernels_dir
    if not folder.is_dir():
        return []
    return sorted(d for d in folder.iterdir() if (d / "kernel-metadata.json").is_file())


def rebuild(project, folders: list[Path]) -> list:
    """Record every training run the backend holds a version of: packs first, so that a run retried in
    a kernel of its own afterwards ends with that newer version."""
    params = {folder.name: _parameters(folder) for folder in folders}
    restored = []
    for slug in [s for s, p in params.items() if isinstance(p.get("MEMBERS"), dict)]:
        restored += _restore_pack(project, slug, params[slug]["MEMBERS"])
    for slug in [s for s, p in params.items() if isinstance(p.get("SPEC"), dict)]:
        restored += _restore(project, slug, params[slug]["SPEC"], host="")
    latest = {run.slug: run for run in restored}
    return [_with_outputs(project, run) for run in latest.values()]


def _with_outputs(project, run):
    """Outputs already downloaded count again (their metrics feed estimates and the results table)."""
    from toolkit.core.errors import ToolkitError
    from toolkit.runs.outputs.fetch import adopt

    if run.status.value != "COMPLETE":
        return run
    try:
        return adopt(project, run) or run
    except ToolkitError:  # not sound: the next kpull downloads it again
        return run


def _restore_pack(project, slug: str, members: dict) -> list:
    from toolkit.runs.watch.pack_results import member_states

    found = project.backend.find_pushed(slug, None)
    if found is None:
        return []
    state = project.backend.status(slug, found.version)
    own = member_states(project, slug, found.version, state)
    runs = []
    for member, code in members.items():
        spec = _literals(str(code)).get("SPEC")
        if isinstance(spec, dict):
            runs += _restore(project, member, spec, host=slug, pushed=(found, own.get(member, state)))
    return runs


def _restore(project, slug: str, values: dict, host: str, pushed=None) -> list:
    """The run of spec `values` whose kernel is `slug` (its own, a pack `host`'s member, or the fresh slug it
    was pushed under when its own was blocked: schedule._push)."""
    from toolkit.core.errors import ToolkitError
    from toolkit.specs.spec import build_spec, is_renamed

    try:
        spec = build_spec(values)
    except ToolkitError:  # rendered by a toolkit whose specs no longer validate: leave it out
        return []
    if slug != spec.slug and not is_renamed(slug, spec.slug):
        return []
    if pushed is None:
        found = project.backend.find_pushed(slug, None)
        if found is None:
            return []
        pushed = (found, project.backend.status(slug, found.version))
    found, state = pushed
    run = project.store.restore_run(spec.slug, "train", project.config.backend, spec.competition,
                                    spec.content_hash, spec.to_dict(), (state.status, state.failure_message),
                                    found.version, found.url, host, kernel_slug="" if slug == spec.slug else slug)
    return [run]


def _parameters(folder: Path) -> dict[str, Any]:
    """The literal assignments in a rendered kernel's notebook (SPEC: a training kernel; MEMBERS: a pack)."""
    try:
        meta = json.loads((folder / "kernel-metadata.json").read_text())
        notebook = json.loads((folder / str(meta["code_file"])).read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    values: dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            values.update(_literals("".join(source) if isinstance(source, list) else str(source)))
    return values


def _literals(source: str) -> dict[str, Any]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in ("SPEC", "MEMBERS"):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, RecursionError):
                pass
    return values


def _relative(project, path: Path) -> str:
    try:
        return str(path.relative_to(project.config.project_dir))
    except ValueError:
        return str(path)
