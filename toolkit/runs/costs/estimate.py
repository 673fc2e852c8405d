"""How long a run takes on the backend's GPUs, in minutes: from finished runs on record with the same arch,
transforms and batch size; else from the seed's measured figures (`priors`: its row, or the arch's rows scaled by
`cost_model`); else from timm's benchmark tables calibrated on the seed (`cost_model`), or from the arch's
parameter count where no table has it; each scaled to the competition's image count; else a flat default,
marked as a guess. What `kpush sweep` plans sessions and the quota with; the local backend's own figure for this
machine is local_duration's, which starts from the same records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from toolkit.kernel.contract import metric
from toolkit.project import Project
from toolkit.specs.spec import RunSpec

RECORDED, GUESS = "recorded", "guess"  # Estimate.source, besides cost_model's "seed", "seed, scaled", "timm", "params"

# Minutes per epoch guessed for an arch in no benchmark table and of no known parameter count: the middle of the
# seed's figures for its small models (00:44 to 03:27 per epoch, priors.py).
DEFAULT_MIN_PER_EPOCH = 2.0
# Kernel start-up (image pull, imports, data listing) per session, in minutes.
SESSION_OVERHEAD_MIN = 3.0
TTA_EPOCHS = 1  # TTA over the validation and test sets costs about one more epoch


SEED_EPOCHS = 12  # a run whose template sets its own epochs is taken to train the seed's
FASTAI_BS = 64  # and one that sets its own batch size, fastai's default


def passes(spec: RunSpec) -> int:
    """Epochs a run trains: its epochs, plus fastai's frozen one when it fine-tunes pretrained weights."""
    return (spec.epochs if spec.epochs is not None else SEED_EPOCHS) + (1 if spec.pretrained else 0)


@dataclass(frozen=True)
class Estimate:
    spec: RunSpec
    minutes_per_epoch: float
    source: str = GUESS  # RECORDED, one of cost_model's kinds, or GUESS (DEFAULT_MIN_PER_EPOCH)

    @property
    def measured(self) -> bool:
        """From a finished run of the same arch, transforms and batch size on this backend."""
        return self.source == RECORDED

    @property
    def minutes(self) -> float:
        """Training passes and about one epoch of TTA, plus start-up."""
        return (passes(self.spec) + TTA_EPOCHS) * self.minutes_per_epoch + SESSION_OVERHEAD_MIN


def estimate(project: Project, specs: list[RunSpec]) -> list[Estimate]:
    """Each spec's minutes per epoch: the mean of finished runs on this backend with the same arch, transforms
    and batch size; else cost_model's figure for Paddy's images times this competition's image count (when its
    folder is here to count; else Paddy's); else the guess."""
    from toolkit.runs.costs import cost_model, priors  # timm's tables are read only where a run is estimated

    done = [r for r in project.store.runs(backend=project.config.backend, kind="train")
            if metric(r.metrics, "minutes_per_epoch") is not None]
    image_counts: dict[str, int | None] = {}
    out = []
    for spec in specs:
        key = kind(spec.arch, spec.item, spec.batch, spec.bs)
        seen = [float(metric(r.metrics, "minutes_per_epoch")) for r in done
                if kind(r.spec.arch, r.spec.item, r.spec.batch, r.spec.bs) == key]
        if seen:
            out.append(Estimate(spec, sum(seen) / len(seen), RECORDED))
            continue
        prior = cost_model.lookup(*key)
        if prior is None:
            out.append(Estimate(spec, DEFAULT_MIN_PER_EPOCH, GUESS))
            continue
        if spec.competition not in image_counts:
            image_counts[spec.competition] = _training_images(project, spec.competition)
        scale = (image_counts[spec.competition] or priors.SEED_IMAGES) / priors.SEED_IMAGES
        out.append(Estimate(spec, prior.minutes_per_epoch * scale, prior.how))
    return out


def kind(arch: str, item: str | None, batch: str | None, bs: int | None) -> tuple[str, str, str, int]:
    """What a run's cost depends on, with a template's own transforms and batch size as fastai's defaults."""
    return arch, item or "", batch or "", bs or FASTAI_BS


def _training_images(project: Project, competition: str) -> int | None:
    """Images in the competition's train_images here (None when it is not downloaded)."""
    from toolkit.competitions.files import image_files

    folder = Path(project.config.resolve(project.config.competitions_root)) / competition / "train_images"
    return (len(image_files(folder)) or None) if folder.is_dir() else None
