"""How long a run takes on the backend's GPUs, in minutes: from finished runs on record with the same arch,
transforms and batch size, else a flat default. What `kpush sweep` plans and checks the quota with; the
local backend's own figure for this machine is local_duration's, which starts from the same records."""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.kernel.contract import metric
from toolkit.project import Project
from toolkit.specs.spec import RunSpec

# Minutes per epoch assumed when no finished run of the same arch, transforms and batch size is on record:
# about what the seed's small models took on a Kaggle T4 (01:30-03:30 per epoch).
DEFAULT_MIN_PER_EPOCH = 2.0
# Kernel start-up (image pull, imports, data listing) per session, in minutes.
SESSION_OVERHEAD_MIN = 3.0
TTA_EPOCHS = 1  # TTA over the validation and test sets costs about one more epoch


def passes(spec: RunSpec) -> int:
    """Epochs a run trains: its epochs, plus fastai's frozen one when it fine-tunes pretrained weights."""
    return spec.epochs + (1 if spec.pretrained else 0)


@dataclass(frozen=True)
class Estimate:
    spec: RunSpec
    minutes_per_epoch: float
    measured: bool  # from a finished run on record, else DEFAULT_MIN_PER_EPOCH

    @property
    def minutes(self) -> float:
        """Training passes and about one epoch of TTA, plus start-up."""
        return (passes(self.spec) + TTA_EPOCHS) * self.minutes_per_epoch + SESSION_OVERHEAD_MIN


def estimate(project: Project, specs: list[RunSpec]) -> list[Estimate]:
    """Minutes per epoch from finished runs on this backend with the same arch, transforms and batch size."""
    done = [r for r in project.store.runs(backend=project.config.backend, kind="train")
            if metric(r.metrics, "minutes_per_epoch") is not None]
    out = []
    for spec in specs:
        key = (spec.arch, spec.item, spec.batch, spec.bs)
        seen = [float(metric(r.metrics, "minutes_per_epoch")) for r in done
                if (r.spec.get("arch"), r.spec.get("item"), r.spec.get("batch"), r.spec.get("bs")) == key]
        if seen:
            out.append(Estimate(spec, sum(seen) / len(seen), True))
        else:
            out.append(Estimate(spec, DEFAULT_MIN_PER_EPOCH, False))
    return out
