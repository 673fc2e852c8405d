"""What a Ray job costs the ray backend: starting a cluster like the tests' (a head and a second node joined to it,
one logical GPU each, token authentication on), then for a one-cell notebook the push (lay out the sandbox, check
the nodes, submit), the wait from queued to its runner started on a node, and push to COMPLETE; the same notebook
on the local backend beside it. The cluster is stopped (`ray stop --force`) whatever happens.

    .venv/bin/python bench/ray_jobs.py [--jobs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "emulator")]

import ray_cluster  # noqa: E402 (the tests' cluster)
from emulator import write_kernel  # noqa: E402

from toolkit.competitions.demo import NAME, build_competition  # noqa: E402
from toolkit.core.config import load_config  # noqa: E402

CELL = f"import shutil\nshutil.copy('../input/competitions/{NAME}/sample_submission.csv', 'submission.csv')"


def one(backend, root: Path, slug: str) -> tuple[float, float]:
    """Seconds to push the notebook, and from push to COMPLETE."""
    folder = write_kernel(root / "kernels", slug, CELL, competition=NAME, gpu=True, internet=False)
    begun = time.monotonic()
    version = backend.push(folder).version
    pushed = time.monotonic() - begun
    while not backend.status(slug, version).status.terminal:
        time.sleep(0.05)
    return pushed, time.monotonic() - begun


def ray_side(root: Path, jobs: int) -> dict:
    begun = time.monotonic()
    cluster = ray_cluster.start()  # (stopped by itself if it fails to start)
    started = time.monotonic() - begun
    os.environ.update(cluster.env)
    from toolkit.backends.ray.backend import RayBackend

    try:
        backend = RayBackend(load_config(root, backend="ray", username="bench"))
        runs = [one(backend, root, f"bench-ray{i}-abc12345") for i in range(jobs)]
    finally:
        ray_cluster.stop()
        shutil.rmtree(cluster.temp, ignore_errors=True)
    states = [json.loads(p.read_text()) for p in root.glob(".toolkit/ray/kernels/*/v1/state.json")]
    return {"cluster_start_s": started, "push_s": [p for p, _ in runs], "complete_s": [t for _, t in runs],
            "queued_to_runner_s": [s["started_at"] - s["queued_at"] for s in states]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    build_competition(root / "competitions", limit=40)
    result = ray_side(root, args.jobs)
    from toolkit.backends.local.backend import LocalBackend

    local = LocalBackend(load_config(root, backend="local", username="bench", concurrency=1))
    result["local_complete_s"] = [one(local, root, f"bench-local{i}-abc12345")[1] for i in range(args.jobs)]
    print(f"cluster (head + second node, token auth): {result['cluster_start_s']:.1f} s")
    for key in ("push_s", "queued_to_runner_s", "complete_s", "local_complete_s"):
        values = result[key]
        print(f"{key}: median {statistics.median(values):.2f} s, " + ", ".join(f"{v:.2f}" for v in values))
    (ROOT / "bench" / "results" / "ray_jobs.json").write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
