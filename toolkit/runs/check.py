"""`kpush ... --check`: before a GPU session is spent, each rendered kernel runs here on the local backend (in
its Kaggle-image sandbox) on a miniature of its competition: a few training images per class and a few test
images, one epoch, small batches, scratch weights unless pretrained ones are on disk. Its outputs are checked
against the output contract. A failure is one line naming where it is in the user's template; nothing is
recorded in the project's registry and nothing is pushed (the check has a throwaway project of its own)."""

from __future__ import annotations

import csv
import json
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from toolkit.backends.local.backend import LocalBackend
from toolkit.competitions.files import image_files, sample_ids
from toolkit.competitions.labels import labelling
from toolkit.competitions.layout import train_labels
from toolkit.core.config import load_config
from toolkit.core.errors import CompetitionError, SpecError
from toolkit.kernel import contract
from toolkit.kernel.folders import write_kernel_folder
from toolkit.kernel.render import KernelOptions, kernel_metadata, render_train_notebook
from toolkit.kernel.runtime.failures import ANSI, cause
from toolkit.project import Project
from toolkit.specs.spec import build_spec

PER_CLASS, TEST_IMAGES, BATCH = 4, 4, 4  # the miniature: images per class, test images, batch size
TIMEOUT_S = 900  # one check kernel at most (its session limit)
POLL_S = 0.5


def check_kernels(project: Project, planned: list, say: Callable[[str], None] = lambda _: None) -> float:
    """Run each planned run's kernel on a miniature; raise SpecError at the first failure. Seconds taken."""
    start = time.monotonic()
    project.config.state_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=".check-", dir=project.config.state_dir))
    try:
        for name in dict.fromkeys(p.spec.competition for p in planned):
            miniature(project, name, root / "competitions")
        backend = LocalBackend(load_config(root, competitions_root=str(root / "competitions"), concurrency=2,
                                           datasets_root=str(project.config.resolve(project.config.datasets_root)),
                                           session_timeout_s=TIMEOUT_S, username="local"))
        pushed = [(item, backend.push(_check_folder(root / "kernels", item)).version) for item in planned]
        for number, (item, version) in enumerate(pushed, 1):
            say(f"checking {item.spec.slug} ({number} of {len(pushed)})")
            _judge(backend, item, version)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return time.monotonic() - start


def miniature(project: Project, name: str, into: Path) -> Path:
    """A few images of each class and a few test images of competition `name`, in its own shape."""
    config = project.config
    source = config.resolve(config.competitions_root) / name
    if not source.is_dir():
        raise CompetitionError(f"--check runs kernels on a miniature of {name}, which is not on this machine",
                               f"kpull data --competition {name} fetches it")
    target = into / name
    given = config.labels_given
    labels, table = train_labels(source, given), labelling(source, given)
    chosen: dict[str, list[Path]] = {}
    for image, label in sorted(labels.items()):
        if len(chosen.setdefault(label, [])) < PER_CLASS:
            chosen[label].append(image)
    for label, images in chosen.items():
        for image in images:
            _copy(image, target / "train_images" / (image.name if table else Path(label) / image.name))
    if table:
        keep = {i.name for images in chosen.values() for i in images}
        _filter_csv(source / table["csv"], target / table["csv"], table["id"],
                    lambda v: v in keep or any(k.startswith(f"{v}.") for k in keep))
    tests = image_files(source / "test_images")[:TEST_IMAGES]
    for image in tests:
        _copy(image, target / "test_images" / image.relative_to(source / "test_images"))
    ids = {t.relative_to(source / "test_images").as_posix() for t in tests}
    header = next(csv.reader(open(source / "sample_submission.csv", newline="", encoding="utf-8-sig")))
    _filter_csv(source / "sample_submission.csv", target / "sample_submission.csv", header[0], ids.__contains__)
    assert set(sample_ids(target / "sample_submission.csv")) == ids
    return target


def _copy(image: Path, to: Path) -> None:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(image, to)


def _filter_csv(source: Path, target: Path, column: str, keep: Callable[[str], bool]) -> None:
    with open(source, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    at = rows[0].index(column)
    with open(target, "w", newline="") as fh:
        csv.writer(fh).writerows([rows[0], *(r for r in rows[1:] if r and keep(r[at]))])


def _check_folder(kernels: Path, item) -> Path:
    """The run's kernel as the check runs it: one epoch, small batches, scratch unless its weights are here."""
    spec = item.spec
    values = {**spec.to_dict(), "epochs": 1, "bs": min(spec.bs, BATCH), "pretrained": bool(item.weights)}
    notebook = render_train_notebook(build_spec(values), item.weights, labels=item.labels, recipe=item.recipe)
    options = KernelOptions(username="local", gpu=False, internet=False,
                            dataset_sources=(f"local/{item.weights[0].split('/')[-1]}",) if item.weights else ())
    return write_kernel_folder(kernels / spec.slug, notebook, kernel_metadata(spec.slug, spec.competition, options))


def _judge(backend: LocalBackend, item, version: int) -> None:
    """Wait for the check kernel; its failure, or an output that breaks the contract, as one line."""
    slug = item.spec.slug
    while not (state := backend.status(slug, version)).status.terminal:
        time.sleep(POLL_S)
    run_dir = backend.kernels / slug / f"v{version}"
    if state.status.value != "COMPLETE":
        raise SpecError(f"--check: {where_it_failed(run_dir / 'executed.ipynb', item) or cause(state.failure_message)}",
                        "nothing was recorded or pushed; fix it and run the same command again")
    try:
        _check_outputs(run_dir / "working")
    except contract.OutputError as exc:
        raise SpecError(f"--check: {_source(item)} ran but its outputs break the contract: {exc}",
                        "write them with save_learner(learn, test_files) (or keep the shipped outputs block); "
                        "nothing was recorded or pushed") from None


def _check_outputs(working: Path) -> None:
    from toolkit.kernel.runtime.ensemble import load_tta

    for name in contract.TRAIN_OUTPUTS + contract.MODEL_OUTPUTS:
        if not (working / name).is_file():
            raise contract.OutputError(f"no {name} was written")
    contract.check_tta(load_tta(working / contract.TTA_FILE))
    contract.check_metrics(json.loads((working / contract.METRICS_FILE).read_text()))


def where_it_failed(executed: Path, item) -> str:
    """'templates/x.py.j2 line 7 (block fit): NameError: ...': the failing cell, its error, the user's line."""
    try:
        notebook = json.loads(executed.read_text())
    except (OSError, ValueError):
        return ""
    for number, cell in enumerate(notebook.get("cells", [])):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                error = cause(f"{output.get('ename')}: {output.get('evalue')}")
                return f"{_place(cell, number, item, output.get('traceback') or [])}: {error}"
    return ""


def _place(cell: dict, number: int, item, traceback: list[str]) -> str:
    """Where a failing cell's code comes from: the user's template (with the line), or the shipped one."""
    meta = cell.get("metadata", {}).get("toolkit", {})
    line = _failing_line(traceback)
    source, block = meta.get("template"), meta.get("block")
    if source is None:
        return f"cell {number}" + (f" (block {block} of the shipped template)" if block else "")
    found = _line_in(item.recipe.path, line) if line and item.recipe and not item.recipe.notebook else None
    at = f" line {found}" if found else ""
    inside = f" (block {block})" if block else (f" (cell {meta['cell']})" if "cell" in meta else "")
    return f"{source}{at}{inside}" + (f": `{line}`" if line else "")


def _failing_line(traceback: list[str]) -> str:
    """The code line IPython marks with an arrow in the cell's own frame (the first of the traceback)."""
    marked = [m.group(1) for entry in traceback for row in ANSI.sub("", entry).splitlines()
              if (m := re.match(r"^-*>\s*\d+\s(.*)$", row))]
    return marked[0].strip() if marked else ""


def _line_in(path: Path, code: str) -> int | None:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip() == code:
            return number
    return None


def _source(item) -> str:
    return item.recipe.shown if item.recipe else "the shipped template"
