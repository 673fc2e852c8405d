"""Where Kaggle mounts a kernel's inputs (read-only), found by one small resolver that every kernel runs.

Today: ../input/competitions/<slug>, ../input/notebooks/<owner>/<slug> (another kernel's outputs),
../input/datasets/<owner>/<slug>; older sessions mounted each at ../input/<slug>. Paths are relative to the
working directory (Kaggle: its working folder), so the same code runs on Kaggle and in the local sandbox.
A dataset's subfolder is uploaded as a zip archive that Kaggle unpacks into a folder of that name
(Kaggle/kaggle-cli#111); where it was left packed (Kaggle/kaggle-cli#292 saw an archive kept as it was), the file
is taken from the archive, unpacked into a scratch folder (never the working directory, which Kaggle saves).
Stdlib only: pasted into every kernel (see render.runtime_source).
"""

import tempfile
import zipfile
from pathlib import Path

INPUT = Path("../input")


def find_input(kind, ref, expect):
    """The folder of input `ref` ('slug' or 'owner/slug') that holds `expect`: current layout, flat layout,
    then a search; when nothing is found, one line naming what it looked for."""
    slug = ref.rsplit("/", 1)[-1]
    tried = [INPUT / kind / ref, INPUT / slug]
    for folder in tried:
        if (folder / expect).exists():
            return folder
    for depth in range(1, 4):  # a folder named `slug` a few levels down, e.g. under another owner
        found = sorted(INPUT.glob("/".join(["*"] * depth) + f"/{slug}/{expect}"))
        if found:
            return Path(str(found[0])[:-len(expect) - 1])
    raise FileNotFoundError(f"input {ref} not found: no {expect} in {' or '.join(map(str, tried))}, "
                            f"nor in any folder named {slug} under {INPUT} (is it attached to this kernel?)")


def input_file(kind, ref, name):
    """The path of file `name` in input `ref`, e.g. pretrained weights in an attached dataset."""
    return find_input(kind, ref, name) / name


def dataset_file(ref, name):
    """The path of file `name` ('folder/file' or 'file') in dataset `ref`: unpacked by Kaggle, else taken from
    the folder's archive; when neither is there, the resolver's own line about what it looked for."""
    try:
        return input_file("datasets", ref, name)
    except FileNotFoundError:
        top, _, rest = name.partition("/")
        try:
            archive = input_file("datasets", ref, top + ".zip") if rest else None
        except FileNotFoundError:
            archive = None
        if archive is None:
            raise
    target = Path(tempfile.gettempdir()) / "kernel-datasets" / ref.replace("/", "--") / top
    if not (target / rest).is_file():
        unpack(archive, target)
    return target / rest


def unpack(archive, target):
    """Unpack a zip into `target`, refusing any entry that would land outside it."""
    target = Path(target)
    with zipfile.ZipFile(archive) as packed:
        for entry in packed.namelist():
            if not (target / entry).resolve().is_relative_to(target.resolve()):
                raise ValueError(f"{archive}: entry {entry!r} would land outside {target}: not unpacked")
        packed.extractall(target)
    return target
