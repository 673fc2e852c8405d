"""`python -m toolkit.cli_main kpush ...`: the console scripts without installed entry points."""

import sys

from . import cli

if __name__ == "__main__":
    name = sys.argv.pop(1)
    getattr(cli, name)()
