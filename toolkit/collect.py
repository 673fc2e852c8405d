"""kpull: wait for kernels to finish and bring their outputs home, checked before they count."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

from .backends.base import Status
from .errors import UnsafeOutput
from .launch import sync
from .poll import wait
from .project import Project
from .store import Run

TRAIN_OUTPUTS = ("tta.pkl", "metrics.json")
ENSEMBLE_OUTPUTS = ("submission.csv", "ensemble.json")


def wait_for(project: Project, competition: str | None, on_update: Callable[[list[Run]], None] | None = None,
             slugs: set[str] | None = None) -> list[Run]:
    """Poll (and push waiting runs) until every run of interest is finished."""
    initial, maximum = project.poll_intervals

    def check() -> list[Run]:
        runs = sync(project, competition)
        return [r for r in runs if slugs is None or r.slug in slugs]

    return wait(check, lambda runs: all(r.status.terminal for r in runs), timeout_s=project.config.wait_timeout_s,
                initial_s=initial, max_s=maximum, on_update=on_update)


def output_dir(project: Project, run: Run) -> Path:
    return project.config.outputs_dir / run.slug / f"v{run.version}"


def download(project: Project, run: Run, names: tuple[str, ...] = TRAIN_OUTPUTS) -> Run:
    """Fetch outputs into outputs/<slug>/v<version>/ via a temporary folder, so a half download never shows."""
    from .ensemble import load_tta

    dest = output_dir(project, run)
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        project.backend.output(run.slug, run.version, partial, names)
        (partial / "log.txt").write_text(project.backend.logs(run.slug, run.version))
        missing = [n for n in names if not (partial / n).is_file()]
        if missing:
            raise UnsafeOutput(f"{run.slug} v{run.version} finished without {', '.join(missing)}",
                               f"see its log: {dest / 'log.txt'}")
        metrics = {}
        if "tta.pkl" in names:
            load_tta(partial / "tta.pkl", project.config.max_output_mb * 2**20)
            metrics = _read_metrics(partial / "metrics.json")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(partial, dest)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return project.store.set_outputs(run.id, dest, metrics)


def _read_metrics(path: Path) -> dict:
    try:
        metrics = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UnsafeOutput(f"{path.name} is not valid JSON") from None
    if not isinstance(metrics, dict):
        raise UnsafeOutput(f"{path.name} does not hold a JSON object")
    return metrics


def pull_outputs(project: Project, competition: str | None, on_update=None, do_wait: bool = True) -> list[Run]:
    """Wait for this competition's training runs (optional), download finished ones, return them all."""
    runs = wait_for(project, competition, on_update) if do_wait else sync(project, competition)
    pulled = []
    for run in runs:
        if run.kind == "train" and run.status == Status.COMPLETE and not run.output_dir:
            run = download(project, run)
        pulled.append(run)
    return [r for r in pulled if r.kind == "train"]


def log_tail(project: Project, run: Run, lines: int = 15) -> str:
    text = project.backend.logs(run.slug, run.version) if run.version else ""
    return "\n".join(text.rstrip().splitlines()[-lines:])
