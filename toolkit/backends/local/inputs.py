"""A kernel's inputs: resolving kernel-metadata's sources to folders on this machine, and mounting them
in a sandbox's input/ as Kaggle does (where, read-only, and a competition without its hidden files).

A competition folder with `hidden_test/` is a code competition; a rerun (rerun.py) sees hidden_test's
test set in place of the public one.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.backends.base import DatasetState
from toolkit.backends.local import paths
from toolkit.backends.local.queue import read_state
from toolkit.competitions.files import HIDDEN_TEST, public_entries
from toolkit.competitions.layout import find_competition
from toolkit.core.config import Config
from toolkit.core.errors import BackendError
from toolkit.core.status import Status

SWAPPED = ("test_images", "sample_submission.csv")  # what a rerun sees from hidden_test/ instead


def hidden_test(competition_dir: Path) -> Path | None:
    folder = competition_dir / HIDDEN_TEST
    return folder if folder.is_dir() else None


def resolve_sources(config: Config, meta: dict, kernels_root: Path | None = None) -> dict[str, Path]:
    """Map each input's mount point (relative to input/) to what it links to; refuse unknown sources. Kernel
    sources are versions under `kernels_root`, the backend's that ran them (default: this one's)."""
    inputs: dict[str, Path] = {}
    root = config.resolve(config.competitions_root)
    for name in meta.get("competition_sources", []):
        inputs[mount(config, "competitions", name)] = find_competition(root, name, config.labels_given,
                                                                           config.image_record(name))
    for ref in meta.get("dataset_sources", []):
        owner, slug = ref.split("/")[:2] if "/" in ref else (paths.username(config), ref)
        path = config.resolve(config.datasets_root) / slug
        if not path.is_dir():
            raise BackendError(f"dataset source '{ref}' not found (no folder {path})")
        inputs[mount(config, "datasets", f"{owner}/{slug}")] = path
    for ref in meta.get("kernel_sources", []):
        parts = ref.split("/")
        owner, slug, version = parts[0], parts[1], (int(parts[2]) if len(parts) > 2 else None)
        inputs[mount(config, "notebooks", f"{owner}/{slug}")] = _completed_working_dir(
            kernels_root or paths.root(config), slug, version, ref)
    return inputs


def mount(config: Config, kind: str, ref: str) -> str:
    """Where Kaggle mounts an input. Today (2026, as kernels pushed from the CLI report it):
    /kaggle/input/competitions/<slug>, /kaggle/input/notebooks/<owner>/<slug>,
    /kaggle/input/datasets/<owner>/<slug>; older sessions saw /kaggle/input/<slug> for all three."""
    return f"{kind}/{ref}" if config.input_layout == "current" else ref.rsplit("/", 1)[-1]


def _completed_working_dir(root: Path, slug: str, version: int | None, ref: str) -> Path:
    versions = paths.versions(root, slug)
    if version is None and versions:
        version = versions[-1]
    if version not in versions:
        raise BackendError(f"kernel source '{ref}' not found in {root / 'kernels'}")
    run_dir = paths.version_dir(root, slug, version)
    if read_state(run_dir).get("status") != Status.COMPLETE.value:
        raise BackendError(f"kernel source '{ref}' has not completed", "wait for it with kpull outputs")
    return run_dir / "working"


def mount_all(config: Config, input_dir: Path, inputs: dict[str, Path], rerun: bool = False) -> list[str]:
    """Lay out input/ and return every path the kernel must not write to (Kaggle mounts inputs
    read-only): input/ itself and what its links point at. A rerun sees the hidden test set."""
    input_dir.mkdir()
    comp_root = config.resolve(config.competitions_root).resolve()
    read_only = [str(input_dir.resolve())]
    for mount_point, target in inputs.items():
        target, link = target.resolve(), input_dir / mount_point
        link.parent.mkdir(parents=True, exist_ok=True)
        read_only.append(str(target))
        if target.parent == comp_root:
            # A real folder of links, so the hidden solution.csv and hidden_test/ never reach the kernel.
            link.mkdir()
            for name, source in competition_entries(target, rerun).items():
                link.joinpath(name).symlink_to(source)
        else:
            link.symlink_to(target, target_is_directory=True)
    return read_only


def competition_entries(target: Path, rerun: bool) -> dict[str, Path]:
    """The competition folder as a kernel sees it: its public entries, and in a rerun the hidden test set
    in place of the public one."""
    entries = {p.name: p.resolve() for p in public_entries(target)}
    hidden = hidden_test(target) if rerun else None
    if hidden is not None:
        entries.update({name: (hidden / name).resolve() for name in SWAPPED})
    return entries


def folder_dataset(config: Config, slug: str) -> DatasetState | None:
    """A dataset of a backend that runs kernels over this machine's files: the folder datasets_root/<slug>, which its
    kernels mount as it is (READY when it is there; no versions)."""
    return DatasetState(DatasetState.READY) if (config.resolve(config.datasets_root) / slug).is_dir() else None


def check_in_place(config: Config, folder: Path) -> None:
    """Nothing to upload where kernels mount datasets_root's folders: only one laid out elsewhere is refused."""
    root = config.resolve(config.datasets_root).resolve()
    if Path(folder).resolve().parent != root:
        raise BackendError(f"dataset folder {folder} is not in datasets_root ({root}), where kernels here find it")
