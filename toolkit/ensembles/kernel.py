"""The ensemble kernel as it is pushed: its slug (its members, weights and what it does), each member as the kernel
finds it (`ensemble_member`), and where: a member trained on the ensemble's own backend in that training kernel's
outputs (`kernel_sources`), a member trained elsewhere in the members' dataset of the user's (`dataset_sources`),
laid out here beside the kernel folder and uploaded before the push (runs.datasets)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from toolkit.kernel.contract import MODEL_OUTPUTS, TRAIN_OUTPUTS, TTA_FILE, metric
from toolkit.kernel.datasets import MEMBERS_LICENSE, dataset_metadata, members_slug, write_dataset
from toolkit.kernel.folders import write_kernel_folder
from toolkit.kernel.recipes import Recipe
from toolkit.kernel.render import KernelOptions, kernel_metadata, render_ensemble_notebook, run_identity
from toolkit.project import Project
from toolkit.registry.records import Run
from toolkit.runs.outputs.fetch import fetch_model
from toolkit.runs.outputs.loaded import Outputs, RunOutputs
from toolkit.specs.spec import make_slug


@dataclass(frozen=True)
class EnsembleKernel:
    """A rendered ensemble kernel: its slug and folder, and the members' dataset folder it attaches (None when
    every member trained on its own backend)."""

    slug: str
    folder: Path
    dataset: Path | None


def ensemble_slug(competition: str, members: list[Run], weights: list[float] | None, predict: bool = False,
                  recipe: Recipe | None = None, backend: str = "") -> str:
    """The same members, weights and kernel make the same slug. A member trained on another backend than the
    ensemble's is keyed with that backend too (the same slug and version there is another model)."""
    key = json.dumps([competition, [(m.slug, m.version, *([m.backend] if backend and m.backend != backend else []))
                                    for m in members], weights, *(["predict"] if predict else []),
                      *([recipe.name, recipe.digest] if recipe else [])])
    return make_slug(f"ensemble {competition}", hashlib.sha256(key.encode()).hexdigest()[:8])


def render_ensemble(project: Project, competition: str, members: list[Run], weights: list[float] | None,
                    predict: bool, recipe: Recipe | None, outputs: Outputs) -> EnsembleKernel:
    """Write the ensemble kernel's folder and, when members trained elsewhere, the members' dataset it attaches."""
    config, user = project.config, project.username
    slug = ensemble_slug(competition, members, weights, predict, recipe, config.backend)
    away = [m for m in members if m.backend != config.backend]
    dataset = members_dataset(project, competition, away, predict) if away else None
    ref = f"{user}/{dataset.name}" if dataset else None
    # The documented kernel source form is owner/slug (Kaggle attaches its latest version), so the kernel
    # checks that what it finds is the version chosen here. A pack kernel is attached once for its runs.
    sources = tuple(dict.fromkeys(f"{user}/{m.kernel}" for m in members if m not in away))
    # Predicting needs a GPU when the members trained on one (a CPU works, slowly); averaging never does.
    gpu = predict and any(metric(m.metrics, "gpu_name") for m in members)
    options = KernelOptions(username=user, gpu=gpu, accelerator=config.accelerator, internet=False,
                            private=config.private, kernel_sources=sources, dataset_sources=(ref,) if ref else ())
    notebook = render_ensemble_notebook(slug, competition, [ensemble_member(user, m, outputs.of(m), ref if m in away
                                                                            else None) for m in members],
                                        weights, predict, recipe)
    folder = write_kernel_folder(config.kernels_dir / slug, notebook, kernel_metadata(slug, competition, options))
    return EnsembleKernel(slug, folder, dataset)


def members_dataset(project: Project, competition: str, away: list[Run], predict: bool) -> Path:
    """The members trained on other backends laid out as one dataset: `<run-slug>/` for each, holding its tta.pkl
    and metrics.json, and for a predicting kernel its model.pth and model.json (brought from its backend)."""
    names = TRAIN_OUTPUTS + (MODEL_OUTPUTS if predict else ())
    files: dict[str, Path] = {}
    for run in away:
        folder = fetch_model(project, run) if predict else project.run_folder(run)
        files.update({f"{run.slug}/{name}": folder / name for name in names})
    slug = members_slug(competition)
    about = (f"Ensemble members of {competition} trained off Kaggle ({', '.join(sorted({r.backend for r in away}))}), "
             "uploaded by kaggle-kernel-toolkit: one folder per run with its outputs.")
    meta = dataset_metadata(project.username, slug, MEMBERS_LICENSE, about)
    return write_dataset(project.config.resolve(project.config.datasets_root) / slug, meta, files)


def ensemble_member(user: str, run: Run, outputs: RunOutputs, dataset: str | None = None) -> dict:
    """What the ensemble kernel needs to find a member's outputs and make sure they are this run's: in the training
    kernel's outputs (`source`), or in the members' dataset (`dataset`: its `<run-slug>/` folder)."""
    return {"name": run.slug, "source": None if dataset else f"{user}/{run.kernel}", "dataset": dataset,
            "version": run.version, "backend": run.backend,
            # a pack writes each run into <run-slug>/, as the members' dataset holds each one
            "tta": f"{run.slug}/{TTA_FILE}" if run.host or dataset else TTA_FILE,
            "identity": run_identity(run.slug, run.spec_hash),  # what its training kernel wrote
            "sha256": outputs.sha256,
            "item": run.spec.item, "batch": run.spec.batch}  # a predicting kernel rebuilds them
