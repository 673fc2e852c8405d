"""Refresh toolkit/data's trimmed copies of timm's benchmark tables, which runs/costs/benchmarks.py prices archs from.

Reads a git checkout of github.com/huggingface/pytorch-image-models at its HEAD (nothing is downloaded here):

    git clone --depth 1 https://github.com/huggingface/pytorch-image-models /tmp/timm
    .venv/bin/python bench/timm_tables.py /tmp/timm

then run bench/cost_model.py again: the calibration and its leave-one-out error follow the tables.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "toolkit" / "data"
# Shipped name -> (file in the repository's results/, what its name says about how it was measured).
TABLES = {
    "timm_benchmark_rtx3090.csv": ("benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv",
                                   "inference, AMP (fp16), NCHW, PyTorch 2.4, CUDA 12.4, one RTX 3090"),
    "timm_benchmark_pro6000.csv": ("benchmark-infer-amp-nchw-pt291-cu130-pro6000maxq.csv",
                                   "inference, AMP (fp16), NCHW, PyTorch 2.9.1, CUDA 13.0, one RTX Pro 6000 Max-Q"),
}
COLUMNS = {"model": "model", "infer_img_size": "img_size", "infer_samples_per_sec": "samples_per_sec",
           "param_count": "param_count_m", "infer_gmacs": "gmacs"}


def git(checkout: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(checkout), *args], check=True, capture_output=True, text=True).stdout


def trimmed(checkout: Path, source: str, what: str) -> str:
    path = f"results/{source}"
    commit, date = git(checkout, "log", "-1", "--format=%H %cs", "--", path).split()
    rows = list(csv.DictReader(io.StringIO(git(checkout, "show", f"HEAD:{path}"))))
    out = io.StringIO()
    out.write(f"# timm's benchmark table {path}, trimmed to the columns the toolkit reads\n"
              f"# ({', '.join(COLUMNS.values())}; param_count_m in millions).\n"
              f"# Repository: github.com/huggingface/pytorch-image-models, commit {commit} ({date}).\n"
              f"# Measured: {what}.\n"
              "# Refresh: python bench/timm_tables.py CHECKOUT (see its docstring), then bench/cost_model.py.\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS.values())
    for row in rows:
        writer.writerow(row[key] for key in COLUMNS)
    return out.getvalue()


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    checkout = Path(sys.argv[1])
    for name, (source, what) in TABLES.items():
        text = trimmed(checkout, source, what)
        (DATA / name).write_text(text)
        print(f"wrote toolkit/data/{name}: {text.count(chr(10)) - 6} rows, {len(text) // 1024} KB")


if __name__ == "__main__":
    main()
