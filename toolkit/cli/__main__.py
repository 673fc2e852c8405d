"""`python -m toolkit.cli kpush ...`: the console scripts without installed entry points."""

import sys

from toolkit import cli

if __name__ == "__main__":
    name = sys.argv.pop(1)
    getattr(cli, name)()
