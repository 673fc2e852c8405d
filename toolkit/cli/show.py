"""How a command's events look: each flow event (toolkit/flows/events.py) shown on the console as it comes.
A Show is stateful only where the console is: a live table while a wait polls, a spinner while --check or a
download runs; both end at the next event of another kind, or when the command ends."""

from __future__ import annotations

import sys
from typing import Callable

from rich.markup import escape

from toolkit.cli.console import console, errors, note
from toolkit.flows import events as ev


class Show:
    """An Emit for the console: show(event) for each event; close() when the command ends."""

    def __init__(self):
        self._live = None  # rich Live of the current wait
        self._spinner = None  # rich Status of the current --check or download

    def __call__(self, event: object) -> None:
        if not isinstance(event, ev.Waiting):
            self._end_live()
        if not isinstance(event, (ev.Checking, ev.Fetching, ev.Uploading)):
            self._end_spinner()
        SHOWN[type(event)](self, event)

    def close(self) -> None:
        self._end_live()
        self._end_spinner()

    def __enter__(self) -> Show:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _waiting(self, event: ev.Waiting) -> None:
        if not event.runs and self._live is None:  # nothing to wait for: no empty table
            return
        if self._live is None:
            from rich.live import Live

            self._live = Live(console=console, refresh_per_second=2, transient=False)
            self._live.start()
        self._live.update(_tables().status_table(event.runs, title=event.title, progress=event.progress))

    def _spin(self, text: str, title: str) -> None:
        if self._spinner is None:
            self._spinner = errors.status(title)
            self._spinner.start()
        self._spinner.update(escape(text))

    def _end_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            console.print()
            self._live = None

    def _end_spinner(self) -> None:
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None


def _messages():
    from toolkit.cli import messages  # imported when first shown: a dry run never shows most of them

    return messages


def _tables():
    from toolkit.cli import tables

    return tables


def _plan_table(event: ev.SweepPlan):
    from toolkit.cli.plan_table import plan_table

    return plan_table(event.loaded, event.planned, event.actions, event.quota_plan)


def _log_text(text: str) -> None:
    """Log text as it is (no markup, no wrapping), flushed so that a pipe sees each line as it comes."""
    sys.stdout.write(text)
    sys.stdout.flush()


def _plain(line: str) -> None:
    console.print(line, highlight=False, markup=False)


SHOWN: dict[type, Callable[[Show, object], None]] = {
    ev.Note: lambda show, e: note(e.text),
    ev.Said: lambda show, e: _plain(e.text),
    ev.Rendered: lambda show, e: _plain(f"rendered {e.folder}"),
    ev.Checking: lambda show, e: show._spin(e.text, "Checking kernels on a miniature of the competition"),
    ev.Checked: lambda show, e: _messages().checked(e.kernels, e.seconds),
    ev.Durations: lambda show, e: _messages().durations(e.items, e.long_min),
    ev.Packed: lambda show, e: _plain(f"packed into {e.host}: {', '.join(e.members)}"),
    ev.Skipped: lambda show, e: console.print(f"[dim]skipped {escape(e.slug)}: {escape(e.reason)}[/]"),
    ev.SweepPlan: lambda show, e: console.print(_plan_table(e)),
    ev.QuotaPlanned: lambda show, e: _messages().quota_plan(e.quota_plan),
    ev.Quota: lambda show, e: _messages().quota(e.quota),
    ev.Waiting: lambda show, e: show._waiting(e),
    ev.RunsShown: lambda show, e: console.print(_tables().status_table(e.runs, title=e.title)),
    ev.Failed: lambda show, e: _messages().failure(e.run, e.log_tail),
    ev.Retrying: lambda show, e: _messages().retrying(e.runs, e.named),
    ev.Results: lambda show, e: _messages().results(e.tables, e.fmt, e.project_dir, e.extra),
    ev.Submissions: lambda show, e: console.print(_tables().submission_table(e.submissions)),
    ev.Members: lambda show, e: _messages().members(e.members, e.weights, e.steps, e.backend),
    ev.RerunEstimate: lambda show, e: _messages().rerun_estimate(e.estimate, e.members, e.limit_h),
    ev.Ensembled: lambda show, e: _messages().ensembled(e.rows, e.result, e.rerun),
    ev.Written: lambda show, e: errors.print(f"report: {escape(str(e.path))}"),
    ev.LogText: lambda show, e: _log_text(e.text),
    ev.Fetching: lambda show, e: show._spin(e.text, "Downloading the competition"),
    ev.Uploading: lambda show, e: show._spin(e.text, "Uploading a dataset"),
    ev.DatasetReady: lambda show, e: _messages().dataset_ready(e.ref, e.version, e.uploaded, e.files, e.bytes),
}
