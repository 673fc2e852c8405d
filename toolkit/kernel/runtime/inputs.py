"""Where Kaggle mounts a kernel's inputs (read-only), found by one small resolver that every kernel runs.

Today: ../input/competitions/<slug>, ../input/notebooks/<owner>/<slug> (another kernel's outputs),
../input/datasets/<owner>/<slug>; older sessions mounted each at ../input/<slug>. Paths are relative to the
working directory (Kaggle: its working folder), so the same code runs on Kaggle and in the local sandbox.
Stdlib only: pasted into every kernel (see render.runtime_source).
"""

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
