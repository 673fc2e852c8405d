"""fastkaggle's first cells as they mean on Kaggle today: `setup_comp(comp, install=...)` installs `install` with
pip (into the session: on Kaggle, its own copy of the image) and returns the competition's folder where it is
mounted now (../input/competitions/<slug>; fastkaggle 0.0.9 returns ../input/<slug>, the older layout).
`iskaggle` is fastkaggle's own test (KAGGLE_KERNEL_RUN_TYPE, which Kaggle sets in every session): true in a
kernel, here as there.

Pasted into a notebook's injected cell (see render.runtime_source), after the notebook's own
`from fastkaggle import *`, so its names replace fastkaggle's. Stdlib only.
"""

import os
import re
import shlex
import subprocess
import sys

from .inputs import find_input

iskaggle = os.environ.get('KAGGLE_KERNEL_RUN_TYPE', '')


def setup_comp(competition, install=''):
    "The competition's folder, as it is mounted in this kernel, after `pip install -Uqq {install}` (as fastkaggle)."
    if install:
        done = subprocess.run(f'pip install -Uqq {install}', shell=True)
        if done.returncode:  # fastkaggle ignores a failed install; a note says why the old packages stay
            print(f'setup_comp: pip install {install} failed (exit {done.returncode}): '
                  f'going on with the packages the session has')
        elif loaded_already(install):
            print(f'setup_comp: installed {install} for this session, but this kernel had imported '
                  f'{", ".join(loaded_already(install))} already (the toolkit\'s helpers use them): '
                  f'it goes on with the versions it imported')
    return find_input('competitions', competition, 'sample_submission.csv')


def loaded_already(install):
    "The packages of a pip `install` string that this process has imported (an install does not replace them)."
    names = [re.match(r'[A-Za-z0-9._-]+', word).group(0) for word in shlex.split(install) if not word.startswith('-')]
    modules = [name.lower().replace('-', '_') for name in names]
    return [f'{m} {getattr(sys.modules[m], "__version__", "")}'.strip() for m in modules if m in sys.modules]
