"""The HTML report of a large competition: 20 finished runs of 100 classes (synthetic outputs, recorded in a
real registry), gathered, drawn and written. Prints seconds and size; the targets are under 5 s and 5 MB.

    .venv/bin/python bench/report_size.py [--runs 20] [--classes 100] [--valid 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def synthetic_project(root: Path, runs: int, classes: int, valid: int):
    """A project whose registry holds `runs` finished runs, each with a tta.pkl of validation and test
    predictions and a metrics.json."""
    import numpy as np
    import torch

    from toolkit.core.config import load_config
    from toolkit.core.status import Status
    from toolkit.project import Project

    project = Project(load_config(root))
    store = project.store
    rng = np.random.default_rng(0)
    vocab = [f"class-{i:03d}" for i in range(classes)]
    targets = rng.integers(0, classes, valid)
    files = [f"c/{i:05d}.jpg" for i in range(valid)]
    for number in range(runs):
        slug = f"run{number:02d}-{number:08x}"
        spec = {"arch": "convnext_small_in22k", "competition": "big", "seed": 42, "epochs": 12,
                "item": "Resize(480)", "batch": "aug_transforms(size=224)"}
        run = store.add_run(slug, "train", "local", "big", f"{number:08x}", spec)
        store.record_push([run.id], 1, "u")
        store.set_status(run.id, Status.COMPLETE)
        logits = rng.normal(0, 1, (valid, classes))
        logits[np.arange(valid), targets] += rng.uniform(2, 4)
        probs = torch.softmax(torch.tensor(logits, dtype=torch.float32), dim=1)
        out = root / "outputs" / slug / "v1"
        out.mkdir(parents=True)
        torch.save({"probs": probs[:50], "files": files[:50], "vocab": vocab, "valid_probs": probs,
                    "valid_targets": torch.tensor(targets), "valid_files": files}, out / "tta.pkl")
        epochs = [{"phase": "train", "epoch": e, "train_loss": 2 / (e + 1), "valid_loss": 2.2 / (e + 1),
                   "error_rate": 0.5 / (e + 1), "seconds": 90.0} for e in range(12)]
        metrics = {"epochs": epochs, "valid_error": 0.04, "tta_error": 0.03 + number / 1000,
                   "minutes_per_epoch": 1.5, "train_seconds": 1080.0}
        (out / "metrics.json").write_text(json.dumps(metrics))
        store.set_outputs(run.id, project.kept(out), metrics)
    return project


def measure(runs: int = 20, classes: int = 100, valid: int = 2000) -> dict:
    from toolkit.reports import build, page
    from toolkit.runs.outputs.loaded import Outputs
    from toolkit.runs.outputs.results import result_rows

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        project = synthetic_project(root, runs, classes, valid)
        recorded, read = project.store.runs(kind="train"), Outputs(project)
        start = time.perf_counter()
        report = build.gather("big", recorded, result_rows(recorded, read), project.store.submissions(), read)
        path = page.write(report, root / "outputs" / "report-big.html")
        seconds = time.perf_counter() - start
        return {"runs": runs, "classes": classes, "valid_images": valid, "seconds": round(seconds, 3),
                "megabytes": round(path.stat().st_size / 2**20, 3)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--valid", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps(measure(args.runs, args.classes, args.valid)))
