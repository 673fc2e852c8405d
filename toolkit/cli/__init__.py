"""The command line, and the only code that prints: the console scripts' typer apps (push, pull, submit,
status, logs: each parses its flags, runs its command's flow (toolkit/flows/) and maps what it ends with to an
exit code), the one error boundary (main), how each flow event looks (show), the consoles, the tables and the
other messages (console, tables, plan_table, messages). Everything the commands do is in the packages below;
this one only decides what to show."""

from toolkit.cli.logs import logs_app
from toolkit.cli.main import klogs, kpull, kpush, kstatus, kstop, ksubmit
from toolkit.cli.pull import pull_app
from toolkit.cli.push import push_app
from toolkit.cli.status import status_app, stop_app
from toolkit.cli.submit import submit_app

__all__ = ["klogs", "kpull", "kpush", "kstatus", "kstop", "ksubmit", "logs_app", "pull_app", "push_app", "status_app",
           "stop_app", "submit_app"]
