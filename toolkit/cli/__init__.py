"""The command line, and the only code that prints: the console scripts' typer apps (push, pull, submit,
status, logs: each parses its flags, then runs its command's steps in order, showing each as it happens), the
one error boundary (main), the consoles, the tables and the other printing (console, tables, report).
Everything the commands do is in the packages below; this one only decides what to show."""

from toolkit.cli.logs import logs_app
from toolkit.cli.main import klogs, kpull, kpush, kstatus, kstop, ksubmit
from toolkit.cli.pull import pull_app
from toolkit.cli.push import push_app
from toolkit.cli.status import status_app, stop_app
from toolkit.cli.submit import submit_app

__all__ = ["klogs", "kpull", "kpush", "kstatus", "kstop", "ksubmit", "logs_app", "pull_app", "push_app", "status_app",
           "stop_app", "submit_app"]
