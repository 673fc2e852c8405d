"""CLI start-up cost: commands that only read the store or render must start fast.

Times, side by side in one run, two references (an empty Python and `import torch`) and the commands that do
not train: `kpush --help`, `kstatus --no-refresh`, and `kpush train --dry-run` on the local backend and on
the Kaggle backend (TOOLKIT_USERNAME set, no credentials: a dry run contacts nothing). Each round runs every
command once in a fresh process, in turn, so that the machine's load falls on all of them alike; the table
shows each command's median and its ratio to the median of `import torch`. Each command is also run once under
`python -X importtime` to check what it loaded:
- none of them loads torch, fastai, timm, the kaggle client, nbclient or jupytext;
- rendering (the dry runs) loads jinja2's core but not its heavy parts (the sandbox, extensions, native types,
  debug and meta modules, asyncio for async templates), nor nbformat or jsonschema (what it writes is plain JSON);
- `--help` and `kstatus` load no jinja2 at all, nor nbformat or jsonschema.
Exits non-zero when a command takes 0.2x `import torch` or more, or loads what it must not. Writes
bench/results/cli_overhead.json (with each command's largest imports, for finding what to cut).

    .venv/bin/python bench/cli_overhead.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIMIT = 0.2  # of `import torch`
TORCH = "python -c 'import torch'"
NOT_EVER = ("torch", "torchvision", "fastai", "timm", "kaggle", "kagglesdk", "nbclient", "jupytext")
JINJA2_HEAVY = ("jinja2.sandbox", "jinja2.ext", "jinja2.nativetypes", "jinja2.debug", "jinja2.meta", "asyncio")
RENDERS = NOT_EVER + JINJA2_HEAVY + ("nbformat", "jsonschema")
SHOWS = NOT_EVER + ("jinja2", "nbformat", "jsonschema")
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def commands() -> dict[str, tuple[list[str], dict, tuple[str, ...] | None]]:
    """label -> (argv, extra environment, modules it must not load; None: a reference, not checked)."""
    py, cli = sys.executable, [sys.executable, "-m", "toolkit.cli"]
    train = ["kpush", "train", "--arch", "convnext_small_in22k", "--competition", "bench-comp", "--dry-run"]
    return {
        "python -c pass": ([py, "-c", "pass"], {}, None),
        TORCH: ([py, "-c", "import torch"], {}, None),
        "kpush --help": ([*cli, "kpush", "--help"], {}, SHOWS),
        "kstatus --no-refresh": ([*cli, "kstatus", "--no-refresh"], {}, SHOWS),
        "kpush train --dry-run (local)": ([*cli, *train, "--backend", "local"], {}, RENDERS),
        "kpush train --dry-run (kaggle)": ([*cli, *train, "--backend", "kaggle"], {"TOOLKIT_USERNAME": "you"}, RENDERS),
    }


def clean_env(home: Path, competitions: Path) -> dict[str, str]:
    """No toolkit or Kaggle settings from the caller and no credentials; the bench's competitions folder. Python
    writes and reads bytecode, as an installed copy has it (pip compiles it at install; the warm-up round writes
    the checkout's into its __pycache__ folders)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TOOLKIT_", "KAGGLE_")) and k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "HOME": str(home), "TOOLKIT_COMPETITIONS_ROOT": str(competitions), "COLUMNS": "120"}


def timed(argv: list[str], env: dict, cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()[-300:]}")
    return elapsed


def imports(argv: list[str], env: dict, cwd: Path) -> list[tuple[str, float, tuple[str, ...]]]:
    """(module, cumulative seconds, the modules whose import imported it) for every module the command imported."""
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=env, cwd=cwd, capture_output=True, text=True)
    found = [m for m in map(IMPORT_LINE.match, done.stderr.splitlines()) if m]
    modules, stack = [], []  # importtime lists a module after the modules it imported, one level deeper
    for m in reversed(found):
        depth = len(m.group(3)) // 2
        del stack[depth:]
        modules.append((m.group(4), int(m.group(2)) / 1e6, tuple(stack)))
        stack.append(m.group(4))
    return modules


def loaded(modules: list, unwanted: tuple[str, ...]) -> list[str]:
    """Which of `unwanted` (a package, or a module and its submodules) the command loaded."""
    names = {name for name, _, _ in modules}
    return sorted(u for u in unwanted if any(n == u or n.startswith(u + ".") for n in names))


def largest(modules: list, count: int = 8) -> dict[str, float]:
    """The imports that cost most (cumulative seconds), leaving out those inside one already listed."""
    shown: dict[str, float] = {}
    for name, seconds, above in sorted(modules, key=lambda m: -m[1]):
        if len(shown) < count and shown.keys().isdisjoint(above):
            shown[name] = round(seconds, 3)
    return shown


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        (Path(tmp) / "home").mkdir()
        from toolkit.competitions.demo import build_competition
        build_competition(Path(tmp) / "c", "bench-comp", limit=40)
        env = clean_env(Path(tmp) / "home", Path(tmp) / "c")
        runs = {label: (argv, {**env, **extra}, unwanted)
                for label, (argv, extra, unwanted) in commands().items()}
        times: dict[str, list[float]] = {label: [] for label in runs}
        # The first round is not counted: it warms the file cache, writes the checkout's bytecode and leaves what a
        # project keeps between commands (its registry, the record of the competition images that decoded well).
        for round_ in range(args.repeat + 1):
            for label, (argv, run_env, _) in runs.items():
                elapsed = timed(argv, run_env, project)
                if round_:
                    times[label].append(elapsed)
        checked = {label: imports(argv, run_env, project) for label, (argv, run_env, _) in runs.items()}
    torch_s = statistics.median(times[TORCH])
    results, failures = {}, []
    for label, (_, _, unwanted) in runs.items():
        median = statistics.median(times[label])
        bad = loaded(checked[label], unwanted) if unwanted is not None else []
        results[label] = {"median_s": round(median, 4), "min_s": round(min(times[label]), 4),
                          "ratio_to_import_torch": round(median / torch_s, 3), "modules": len(checked[label]),
                          "loaded_unwanted": bad, "largest_imports": largest(checked[label])}
        if unwanted is not None and (median / torch_s >= LIMIT or bad):
            failures.append(label)
    print(f"{'command':<32}{'median s':>10}{'min s':>8}{'/ import torch':>16}  loaded what it must not")
    for label, r in results.items():
        print(f"{label:<32}{r['median_s']:>10.3f}{r['min_s']:>8.3f}{r['ratio_to_import_torch']:>16.2f}  "
              f"{', '.join(r['loaded_unwanted']) or '-'}")
    out = Path(__file__).parent / "results" / "cli_overhead.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"repeat": args.repeat, "limit_ratio": LIMIT, "python": sys.version.split()[0],
                               "passed": not failures, "results": results}, indent=2) + "\n")
    print(f"wrote {out}")
    if failures:
        raise SystemExit(f"at or over {LIMIT}x import torch, or loading what they must not: {', '.join(failures)}")


if __name__ == "__main__":
    main()
