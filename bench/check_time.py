"""How long `kpush train --check` takes: on the demo competition (a small model at 32 px), and on a Paddy-sized
one (JPEGs 480 wide x 640 high, ten classes; the seed's convnext_small_in22k with its Resize(480) and
aug_transforms(size=224), from scratch, as the check runs a model whose weights are not on this machine).
Each check trains one epoch on a miniature (4 images per class, 4 test images) in a local kernel.

    .venv/bin/python bench/check_time.py [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
BIN = Path(sys.executable).parent

CASES = {
    "demo resnet18 32 px": ["--competition", "digits-demo", "--arch", "resnet18", "--item", "Resize(32)",
                            "--batch", "aug_transforms(size=32)"],
    "paddy-sized convnext_small_in22k 224 px": ["--competition", "synthetic-paddy", "--arch", "convnext_small_in22k",
                                                "--item", "Resize(480)", "--batch",
                                                "aug_transforms(size=224, min_scale=0.75)"],
}


def project() -> Path:
    from kernel_throughput import build_competition as paddy_like

    from toolkit.competitions.demo import build_competition

    root = Path(tempfile.mkdtemp(prefix="check-bench-"))
    build_competition(root / "competitions")
    paddy_like(root / "competitions", n_images=200, n_test=20, height=640, width=480)
    return root


def time_check(root: Path, args: list[str]) -> float:
    env = {**os.environ, "TOOLKIT_PROJECT": str(root)}
    start = time.perf_counter()
    done = subprocess.run([str(BIN / "kpush"), "train", *args, "--check", "--dry-run"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return time.perf_counter() - start


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    root = project()
    print(json.dumps({name: [round(time_check(root, case), 1) for _ in range(args.repeat)]
                      for name, case in CASES.items()}))
