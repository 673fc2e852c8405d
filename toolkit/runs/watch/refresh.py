"""Refreshing: ask the backend how each unfinished run stands and record it. Read-only towards the backend:
nothing is pushed here (schedule.py pushes)."""

from __future__ import annotations

from toolkit.backends.base import KernelState
from toolkit.core.status import Status
from toolkit.project import Project
from toolkit.registry.records import Run
from toolkit.runs.watch.timeouts import explain


def refresh(project: Project, competition: str | None = None, logs: dict | None = None) -> list[Run]:
    """Record the backend's state of every pushed, unfinished run (of `competition`, or all), a version that ran
    past its session limit with its cause (timeouts.py); returns them all. `logs` keeps the logs read to explain a
    cancel (one read per kernel version), for the rest of the poll."""
    store = project.store
    states: dict = {}  # one status call per kernel version, however many runs it trains
    logs = {} if logs is None else logs
    for run in store.runs(backend=project.config.backend, competition=competition):
        if run.version is not None and not run.status.terminal and run.status != Status.NEW:
            state = explain(project, run, _run_state(project, run, states), logs)
            message = _message(run, state)
            if state.moved_to is not None:  # lost and resubmitted by the backend: the run goes on as that version
                store.move_on(run.id, state.moved_to.version, state.moved_to.url, state.failure_message)
            elif state.status != run.status or message != run.failure_message:
                store.observe(run.id, state.status, message)
    return store.runs(backend=project.config.backend, competition=competition)


def _message(run: Run, state: KernelState) -> str:
    """What the run's message becomes: the backend's, or while it has not ended, the toolkit's note on it (why
    it was requeued), which a running version's empty message does not erase."""
    return state.failure_message or ("" if state.status.terminal else run.failure_message)


def _run_state(project: Project, run: Run, cache: dict) -> KernelState:
    """The run's state: its kernel's, or for a packed run that ended, its own line of the pack's results."""
    key = (run.kernel, run.version)
    if key not in cache:
        state = project.backend.status(run.kernel, run.version)
        members = {}
        if run.host and state.moved_to is None:
            from toolkit.runs.watch.pack_results import member_states
            members = member_states(project, run.kernel, run.version, state)
        cache[key] = (state, members)
    state, members = cache[key]
    return members.get(run.slug, state)
