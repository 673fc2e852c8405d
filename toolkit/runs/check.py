"""`kpush ... --check`: before a GPU session is spent, each rendered kernel runs here on the local backend (in
its Kaggle-image sandbox) on a miniature of its competition: a few training images per class and a few test
images with the competition's other files (its CSVs filtered to those images), one epoch where the template
declares its epochs, batches that fit the miniature whatever size the template asks for, and pretrained weights
only from this machine's disk (else from scratch, said in the kernel's log). The kernel has the internet the run
has (a notebook's `pip install` needs it). Its outputs are checked against the output contract. A failure is
one line naming where it is in the user's template, with what to do for the usual causes, and the check's
folder (executed notebook and log) is kept to look at; nothing is recorded in the project's registry and
nothing is pushed (the check has a throwaway project of its own)."""

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
from toolkit.competitions.files import image_files, public_entries, sample_ids
from toolkit.competitions.labels import labelling
from toolkit.competitions.layout import train_labels
from toolkit.core.config import load_config
from toolkit.core.errors import CompetitionError, SpecError
from toolkit.kernel import contract
from toolkit.kernel.folders import write_kernel_folder
from toolkit.kernel.render import KernelOptions, kernel_metadata, render_train_notebook
from toolkit.kernel.runtime.failures import ANSI, cause, cell_label
from toolkit.project import Project
from toolkit.runs.watch.failures import advice
from toolkit.specs.spec import build_spec

PER_CLASS, TEST_IMAGES, BATCH = 4, 4, 4  # the miniature: images per class, test images, batch size
TIMEOUT_S = 900  # one check kernel at most (its session limit)
POLL_S = 0.5
CHECKS = "checks"  # .toolkit/checks/<check>/: a failed check's folder, kept to look at


def check_kernels(project: Project, planned: list, say: Callable[[str], None] = lambda _: None) -> float:
    """Run each planned run's kernel on a miniature; raise SpecError at the first failure (its folder kept).
    Seconds taken."""
    start = time.monotonic()
    (project.config.state_dir / CHECKS).mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=project.config.state_dir / CHECKS))
    for name in dict.fromkeys(p.spec.competition for p in planned):
        miniature(project, name, root / "competitions")
    backend = LocalBackend(load_config(root, competitions_root=str(root / "competitions"), concurrency=2,
                                       datasets_root=str(project.config.resolve(project.config.datasets_root)),
                                       session_timeout_s=TIMEOUT_S, username="local"))
    pushed = [(item, backend.push(_check_folder(root / "kernels", item, project.config.internet)).version)
              for item in planned]
    for number, (item, version) in enumerate(pushed, 1):
        say(f"checking {item.spec.slug} ({number} of {len(pushed)})")
        _judge(backend, item, version, project.config.project_dir)
    shutil.rmtree(root, ignore_errors=True)  # a failed check's folder stays (its line says where)
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
    tests = image_files(source / "test_images")[:TEST_IMAGES]
    for image in tests:
        _copy(image, target / "test_images" / image.relative_to(source / "test_images"))
    kept = {i.name for images in chosen.values() for i in images} | {t.name for t in tests}
    ids = {t.relative_to(source / "test_images").as_posix() for t in tests}
    for entry in public_entries(source):  # the competition's other files, as a notebook reads them
        if entry.name not in ("train_images", "test_images"):
            _keep_entry(entry, target / entry.name, kept | ids)
    assert set(sample_ids(target / "sample_submission.csv")) == ids
    return target


def _keep_entry(entry: Path, to: Path, images: set[str]) -> None:
    """A CSV with a column of image names keeps the rows of the miniature's images; anything else is linked."""
    column = _image_column(entry, images) if entry.suffix.lower() == ".csv" and entry.is_file() else None
    if column is None:
        to.symlink_to(entry.resolve(), target_is_directory=entry.is_dir())
        return
    _filter_csv(entry, to, column, lambda v: v in images or any(k.startswith(f"{v}.") for k in images))


def _image_column(table: Path, images: set[str]) -> str | None:
    """The column of a CSV whose values name images of the miniature (with or without the extension)."""
    stems = images | {name.rsplit(".", 1)[0] for name in images}
    with open(table, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    for at, column in enumerate(rows[0] if rows else []):
        if any(len(row) > at and row[at] in stems for row in rows[1:]):
            return column
    return None


def _copy(image: Path, to: Path) -> None:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(image, to)


def _filter_csv(source: Path, target: Path, column: str, keep: Callable[[str], bool]) -> None:
    with open(source, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    at = rows[0].index(column)
    with open(target, "w", newline="") as fh:
        csv.writer(fh).writerows([rows[0], *(r for r in rows[1:] if r and keep(r[at]))])


def _check_folder(kernels: Path, item, internet: bool) -> Path:
    """The run's kernel as the check runs it: one epoch where the template declares epochs, batches the
    miniature fills, pretrained weights only from this machine (else from scratch), the run's internet."""
    spec = item.spec
    values = {**spec.to_dict(), "epochs": None if spec.epochs is None else 1,
              "bs": None if spec.bs is None else min(spec.bs, BATCH), "pretrained": bool(item.weights)}
    notebook = render_train_notebook(build_spec(values), item.weights, labels=item.labels, recipe=item.recipe,
                                     check_batches=BATCH)
    options = KernelOptions(username="local", gpu=False, internet=internet,
                            dataset_sources=(f"local/{item.weights[0].split('/')[-1]}",) if item.weights else ())
    return write_kernel_folder(kernels / spec.slug, notebook, kernel_metadata(spec.slug, spec.competition, options))


def _judge(backend: LocalBackend, item, version: int, project_dir: Path) -> None:
    """Wait for the check kernel; its failure, or an output that breaks the contract, as one line that says
    where the check's executed notebook and log are."""
    slug = item.spec.slug
    while not (state := backend.status(slug, version)).status.terminal:
        time.sleep(POLL_S)
    run_dir = backend.kernels / slug / f"v{version}"
    kept = f"the check's notebook and log: {_shown(run_dir / 'executed.ipynb', project_dir)}, log.txt beside it"
    if state.status.value != "COMPLETE":
        line = where_it_failed(run_dir / "executed.ipynb", item) or cause(state.failure_message)
        raise SpecError(f"--check: {line}", "; ".join(filter(None, [advice(line), kept,
                                                                   "nothing was recorded or pushed"])))
    try:
        _check_outputs(run_dir / "working")
    except contract.OutputError as exc:
        raise SpecError(f"--check: {_source(item)} ran but its outputs break the contract: {exc}",
                        "write them with save_learner(learn, test_files) (or keep the shipped outputs block); "
                        f"{kept}; nothing was recorded or pushed") from None


def _shown(path: Path, project_dir: Path) -> str:
    return str(path.relative_to(project_dir)) if path.is_relative_to(project_dir) else str(path)


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
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                error = cause(f"{output.get('ename')}: {output.get('evalue')}")
                return f"{_place(cell, item, output.get('traceback') or [])}: {error}"
    return ""


def _place(cell: dict, item, traceback: list[str]) -> str:
    """Where a failing cell's code comes from: the user's template (with the line), or the shipped one; the
    cell as Jupyter numbers it in the executed notebook (In [N]), as kstatus and kpull name it too."""
    meta = cell.get("metadata", {}).get("toolkit", {})
    line = _failing_line(traceback)
    source, block = meta.get("template"), meta.get("block")
    if source is None:
        return cell_label(cell) + (f" (block {block} of the shipped template)" if block else "")
    found = _line_in(item.recipe.path, line) if line and item.recipe and not item.recipe.notebook else None
    at = f" line {found}" if found else ""
    inside = f" (block {block})" if block else f" {cell_label(cell)}"
    if meta.get("injected"):
        inside = f" {cell_label(cell)} (the cell the toolkit injects)"
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
