"""What a newcomer waits for: `make demo` and then `make test` in a fresh clone of this repository, timed.

Clones the committed HEAD into a temporary folder (uncommitted changes are not in it), runs `make demo` there
(building .venv from requirements.lock with pip's download cache as it is on this machine, the demo competition,
two training runs, the ensemble and its score), then `make test`, each with the environment's TOOLKIT_* and
KAGGLE_* variables removed, and writes bench/results/fresh_clone.json: each step's wall time and exit code, the
demo's ensemble score against its best single run, its results table (`kpull outputs --format md`) and the
suite's counts. Then it rewrites the README's numbers (between its `fresh-clone` marks) from that file, and the
docs site shows the same (docs/hooks/pages.py): no number of these is edited by hand. About 15 minutes on 2 cores.

    .venv/bin/python bench/fresh_clone.py [--keep] [--readme-only]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "fresh_clone.json"
README = ROOT / "README.md"
START, END = "<!-- fresh-clone: start -->", "<!-- fresh-clone: end -->"
SCORE = re.compile(r"ensemble score: ([0-9.]+) \(best single run on the same test set: ([0-9.]+)\)")
PYTEST = re.compile(r"^=* ?(\d+ (?:passed|failed)[^\n]*?) in ([0-9.]+)s", re.MULTILINE)  # -q prints it bare, -v in ='s


def minutes(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60:02d} s"


def summary(data: dict) -> str:
    """The README's (and the docs') sentences about a fresh clone, from the bench's file."""
    if not data.get("measured"):
        return ("*Fresh-clone timings and the demo's score are not measured for this version yet:* "
                "`.venv/bin/python bench/fresh_clone.py` (about 15 minutes on 2 cores) times `make demo` and "
                "`make test` in a fresh clone and writes them to `bench/results/fresh_clone.json` and here.")
    demo, test = data["demo"], data["test"]
    text = (f"Measured by `bench/fresh_clone.py` ({data['date']}, commit `{data['commit'][:8]}`, {data['cpus']} "
            f"cores, pip's download cache warm): from a fresh clone `make demo` took {minutes(demo['seconds'])}, "
            f"building `.venv` included")
    if demo.get("ensemble_score") is not None:
        text += (f"; the ensemble scored {demo['ensemble_score']:.4f} against {demo['best_single']:.4f} for its best "
                 "single run")
    text += f". `make test` then took {minutes(test['seconds'])} ({test['summary']})."
    if demo.get("results_md"):
        text += "\n\nThe demo's `kpull outputs`:\n\n" + demo["results_md"].strip()
    return text


def readme_block(data: dict) -> str:
    return f"{START}\n{summary(data)}\n{END}"


def rewrite_readme(data: dict, readme: Path = README) -> None:
    text = readme.read_text()
    begin, end = text.index(START), text.index(END) + len(END)
    readme.write_text(text[:begin] + readme_block(data) + text[end:])


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("TOOLKIT_", "KAGGLE_"))}


def timed(command: list[str], cwd: Path, log: Path) -> dict:
    began = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(command, cwd=cwd, env=clean_env(), stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
    return {"seconds": round(time.monotonic() - began, 1), "exit": done.returncode, "log": log.name}


def measure(workdir: Path) -> dict:
    clone = workdir / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip()
    demo = timed(["make", "demo"], clone, workdir / "demo.log")
    found = SCORE.findall((workdir / "demo.log").read_text())
    if found:
        demo["ensemble_score"], demo["best_single"] = (float(x) for x in found[-1])
    table = subprocess.run([str(clone / ".venv" / "bin" / "kpull"), "outputs", "--no-wait", "--format", "md"],
                           cwd=clone, env=clean_env(), capture_output=True, text=True)
    demo["results_md"] = table.stdout if table.returncode == 0 else ""
    test = timed(["make", "test"], clone, workdir / "test.log")
    counts = PYTEST.findall((workdir / "test.log").read_text())
    test["summary"] = counts[-1][0] if counts else "no pytest summary"
    return {"measured": test["exit"] == 0 and demo["exit"] == 0, "date": datetime.now(timezone.utc).date().isoformat(),
            "commit": commit, "cpus": os.cpu_count(), "python": platform.python_version(), "demo": demo, "test": test}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the clone and its logs (their folder is printed)")
    parser.add_argument("--readme-only", action="store_true", help="rewrite the README from the results file only")
    args = parser.parse_args()
    if not args.readme_only:
        workdir = Path(tempfile.mkdtemp(prefix="fresh-clone-"))
        try:
            data = measure(workdir)
        finally:
            if args.keep:
                print(f"clone and logs kept in {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
        RESULTS.write_text(json.dumps(data, indent=2) + "\n")
        if not data["measured"]:
            print(f"a step failed: {json.dumps(data, indent=2)}", file=sys.stderr)
    rewrite_readme(json.loads(RESULTS.read_text()))
    print(summary(json.loads(RESULTS.read_text())))
    return 0 if json.loads(RESULTS.read_text()).get("measured") else 1


if __name__ == "__main__":
    sys.exit(main())
