"""What a failed run's one-line cause means for the user, without running a kernel: what to do for the usual
causes, and `kpush retry` advised only where a retry can help."""

from __future__ import annotations

import time

import pytest

from toolkit.core.status import Status
from toolkit.registry.records import Run
from toolkit.runs.watch.failures import advice, retry_helps
from toolkit.runs.watch.wait import RunsFailed, check_finished
from toolkit.specs.spec import RunSpec


def run(slug: str, status: Status, message: str, aside: bool = False) -> Run:
    now = time.time()
    return Run(1, slug, "train", "local", "digits-demo", "abcd1234", RunSpec("resnet18", "digits-demo"), status, 1,
               "", message, "", {}, now, now, now, now, set_aside_at=now if aside else None)


@pytest.mark.parametrize("message, helps", [
    ("In [3]: ValueError: this recipe writes no outputs", False),
    ("outputs break the contract: resnet18 v1 tta.pkl lacks vocab", False),
    ("outputs refused: resnet18 v1 tta.pkl is not plain data (loading it would run code), so it was not loaded", False),
    ("the kernel's process ended without reporting a result", True),
    ("stopped by the user", True),
])
def test_a_retry_is_advised_only_where_it_can_help(message, helps):
    assert retry_helps(message) is helps


def test_the_last_line_names_retry_only_for_what_it_helps_and_leaves_runs_set_aside_out():
    code = run("code-abcd1234", Status.ERROR, "In [3]: NameError: name 'x' is not defined")
    lost = run("lost-abcd1234", Status.ERROR, "the kernel's process ended without reporting a result")
    with pytest.raises(RunsFailed) as raised:
        check_finished([code, lost, run("aside-abcd1234", Status.ERROR, "In [2]: KeyError: 'y'", aside=True)])
    line = str(raised.value)
    assert line.startswith("2 of 2 runs failed: code-abcd1234, lost-abcd1234") and raised.value.exit_code == 3
    assert "kpush retry lost-abcd1234 pushes them again" in line and "code-abcd1234: own code failed" in line
    check_finished([run("aside-abcd1234", Status.ERROR, "boom", aside=True)])  # set aside: counts no more


@pytest.mark.parametrize("line, says", [
    ("In [1]: `path = setup_comp(comp)`: NameError: name 'setup_comp' is not defined", "put the parameters cell above"),
    ("In [4]: ModuleNotFoundError: No module named 'imp'", "Python 3.12"),
    ("In [2]: ModuleNotFoundError: No module named 'fastkaggle'", "not in Kaggle's image"),
    ("In [5]: OSError: [Errno -3] Temporary failure in name resolution", "no internet"),
    ("In [6]: IndexError: This DataLoader does not contain any batches", "lower its batch size"),
    ("In [7]: ZeroDivisionError: division by zero", ""),
])
def test_the_usual_causes_say_what_to_do(line, says):
    assert (says in advice(line)) if says else advice(line) == ""
