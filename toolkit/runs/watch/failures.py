"""What a failed kernel's one-line cause means for the user: what to do about the causes met most (a check's
line carries it), and whether pushing the same kernel again could help (`kpush retry` is advised only then)."""

from __future__ import annotations

import re

from toolkit.core.status import Status
from toolkit.registry.records import Run
from toolkit.runs.watch.timeouts import ADVICE, TIMED_OUT, timed_out

# The names a notebook's injected cell defines (kernel/notebooks.py): used before it, they do not exist yet.
HELPERS = ("find_input", "input_file", "save_learner", "setup_comp", "use_pretrained", "tta_predictions",
           "write_outputs", "make_learner", "image_dataloaders", "EpochLog")
# Modules Kaggle's Python (3.12) no longer has (backends/local/kaggle_site/sitecustomize.py refuses them).
REMOVED_IN_312 = ("imp", "asynchat", "asyncore", "smtpd", "distutils")
# A cell's own exception: "In [4]: NameError: ...". The same code fails the same way when pushed again.
CODE_ERROR = re.compile(r"(^|: )In \[\d+\]: [A-Za-z_][\w.]*(Error|Exception)\b|^a cell: ")
OFFLINE = ("Temporary failure in name resolution", "Network is unreachable", "client has been closed")


def advice(line: str) -> str:
    """What to do about a failure's cause, for the causes met most; "" for others."""
    name = re.search(r"NameError: name '(\w+)' is not defined", line)
    if name and name.group(1) in HELPERS:
        return (f"the toolkit defines {name.group(1)} in the cell it injects after your parameters cell: put the "
                "parameters cell above the first cell that uses it")
    module = re.search(r"ModuleNotFoundError: No module named '([\w.]+)'", line)
    if module and module.group(1).split(".")[0] in REMOVED_IN_312:
        return f"Kaggle's image runs Python 3.12, which has no {module.group(1)} module: use its replacement"
    if module:
        return (f"{module.group(1)} is not in Kaggle's image: install it in the notebook (!pip install, which needs "
                "the kernel's internet) before importing it, or use what the image has")
    if any(text in line for text in OFFLINE):
        return ("the kernel has no internet (--no-internet, or a code competition's rerun): attach what it "
                "downloads as a dataset, or push with --internet")
    if "does not contain any batches" in line:
        return "a loader has fewer items than one batch: lower its batch size (bs) or give it more images"
    if line.startswith(TIMED_OUT):
        return ADVICE
    return ""


def failed(run: Run) -> bool:
    """Ended in ERROR, or ran past its session limit (Kaggle reports that CANCEL_ACKNOWLEDGED: timeouts.py)."""
    return run.status == Status.ERROR or timed_out(run)


def retry_helps(message: str) -> bool:
    """Whether pushing the same kernel again may succeed: not when its own code raised, nor when its outputs
    break the contract or were refused, nor when it ran past the session limit (the same run takes as long
    again: a pack's members, for which running alone is a change, are requeued by pack_timeouts.py); yes for a
    lost or stopped session."""
    message = message or ""
    return not (CODE_ERROR.search(message) or message.startswith(("outputs break the contract", "outputs refused",
                                                                  TIMED_OUT)))
