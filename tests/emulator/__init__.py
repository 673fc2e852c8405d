"""A small emulator of Kaggle's public API, as the real kaggle 2.2.5 client speaks it, for tests.

Point the unmodified client at it with `emulator.client_env()` (KAGGLE_API_ENVIRONMENT=LOCALHOST and
HTTP_PROXY=http://127.0.0.1:PORT, set before kaggle is imported): every call then arrives as
absolute-form `POST http://localhost/api/v1/<Service>/<Method>` with a camelCase JSON body.

It keeps kernels, versions and sessions like Kaggle (versions count up per slug; status per
version), validates pushes like Kaggle (slug/title rules, owner, known sources, the batch GPU and
CPU session limits, the weekly GPU quota), answers 403 for kernels that are missing or not yours,
serves outputs from signed-looking URLs with Range support, returns logs in chunks, takes submissions
through StartSubmissionUpload + PUT + CreateSubmission (or CreateCodeSubmission), checks their
ids against the competition's sample_submission.csv and scores them against solution.csv.

Kernels either run for real through the local runner (run_kernels=True: the notebook executes in
a Kaggle-shaped sandbox) or follow a script (QUEUED -> RUNNING -> COMPLETE over a few status
polls, with outputs the test provides). Faults are injected on demand with `fail()`, and every
request is recorded in `requests` for assertions.

Datasets (datasets.py) are uploaded as Kaggle takes them (StartBlobUpload, a PUT of each file to its signed URL,
CreateDataset or CreateDatasetVersion), processed over a few status polls, and mounted where the local runner finds
them, so a kernel that attaches one sees it where Kaggle mounts it.

Modules: model (records, limits, wire formats), kernels, submissions and datasets (the RPCs), state (the emulator's
fields, lifecycle and routing), wire (HTTP), client (the client's set-up and helpers tests share).
"""

from .client import (KEY, USER, build_tiny_competition, prepare_client, use_emulator, wait_scored, wait_until_done,
                     write_kernel)
from .model import Fault, Recorded, Version
from .state import KaggleEmulator

__all__ = ["KEY", "USER", "Fault", "KaggleEmulator", "Recorded", "Version", "build_tiny_competition",
           "prepare_client", "use_emulator", "wait_scored", "wait_until_done", "write_kernel"]
