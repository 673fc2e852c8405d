"""CLI start-up cost: commands that only read the store or render must not pay for torch/fastai/kaggle.

Runs each command N times in fresh processes, side by side with two references (an empty Python
and `import torch`), prints a table of median wall times and the ratio to `import torch`, and checks
which heavy modules each command imported (via `python -X importtime`). Writes
bench/results/cli_overhead.json.

    .venv/bin/python bench/cli_overhead.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "fastai", "timm", "kaggle", "nbclient")
BIN = Path(sys.executable).parent


def commands(project: Path) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import torch'": [py, "-c", "import torch"],
        "kpush --help": [py, "-m", "toolkit.cli", "kpush", "--help"],
        "kstatus --no-refresh": [py, "-m", "toolkit.cli", "kstatus", "--no-refresh"],
        "kpush train --dry-run": [py, "-m", "toolkit.cli", "kpush", "train", "--arch", "convnext_small_in22k",
                                  "--competition", "bench-comp", "--dry-run"],
    }


def timed(argv: list[str], env: dict, cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()[-300:]}")
    return elapsed


def heavy_imports(argv: list[str], env: dict, cwd: Path) -> list[str]:
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=env, cwd=cwd, capture_output=True, text=True)
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    return sorted(imported & set(HEAVY))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        # A competition folder is only checked on the local backend; the kaggle dry run needs none.
        env = {**os.environ, "TOOLKIT_BACKEND": "local", "TOOLKIT_COMPETITIONS_ROOT": str(project / "c")}
        from toolkit.competitions.demo import build_competition
        build_competition(project / "c", "bench-comp", limit=40)
        results = {}
        for label, argv in commands(project).items():
            timed(argv, env, project)  # warm the file cache
            times = [timed(argv, env, project) for _ in range(args.repeat)]
            results[label] = {"median_s": statistics.median(times), "min_s": min(times),
                              "heavy_imports": heavy_imports(argv, env, project)}
    torch_s = results["python -c 'import torch'"]["median_s"]
    print(f"{'command':<28}{'median s':>10}{'min s':>8}{'/ import torch':>16}  heavy modules imported")
    for label, r in results.items():
        print(f"{label:<28}{r['median_s']:>10.3f}{r['min_s']:>8.3f}{r['median_s'] / torch_s:>16.2f}  "
              f"{', '.join(r['heavy_imports']) or '-'}")
    out = Path(__file__).parent / "results" / "cli_overhead.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"repeat": args.repeat, "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
