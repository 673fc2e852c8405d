"""The HTML report without training: a run without validation predictions says what is missing, the page
holds no network reference, and a 20-run, 100-class competition's report is written in under 5 s and 5 MB
(bench/report_size.py's synthetic outputs, in a real registry)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from toolkit.reports import build, page
from toolkit.runs.outputs.loaded import Outputs
from toolkit.runs.outputs.results import result_rows

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import report_size  # noqa: E402


def test_a_large_competitions_report_is_quick_and_small():
    measured = report_size.measure(runs=20, classes=100, valid=2000)
    assert measured["seconds"] < 5 and measured["megabytes"] < 5, measured


def test_a_run_without_validation_predictions_says_what_is_missing(tmp_path):
    project = report_size.synthetic_project(tmp_path, runs=2, classes=5, valid=40)
    old = project.store.runs(kind="train")[0]
    data = torch.load(project.run_folder(old) / "tta.pkl", weights_only=True)
    for key in ("valid_probs", "valid_targets", "valid_files"):
        del data[key]
    torch.save(data, project.run_folder(old) / "tta.pkl")
    runs, read = project.store.runs(kind="train"), Outputs(project)
    report = build.gather("big", runs, result_rows(runs, read), [], read)
    (missing,) = [s for s in report.sections if s.matrix is None]
    assert missing.slug == old.slug and "no valid_probs" in missing.missing
    assert not report.gains  # one run left with validation predictions: nothing to average
    text = page.render(report)
    assert f"id='run-{old.slug}'" in text and "no valid_probs" in text
    assert "http://" not in text and "https://" not in text
    assert set(build.per_class_errors(report)) == {runs[1].slug}


@pytest.mark.slow  # a real browser: the slow tier installs and runs chromium
def test_a_wide_results_table_scrolls_in_its_box_and_the_page_keeps_its_width(tmp_path):
    """Long parameters make the results table wider than the page: it scrolls inside its own box."""
    import json
    import sqlite3

    import browser

    project = report_size.synthetic_project(tmp_path, runs=3, classes=5, valid=40)
    with sqlite3.connect(project.store.path) as db:  # each run with a long free parameter, as --param gives them
        for run in project.store.runs(kind="train"):
            spec = {**run.spec.to_dict(), "params": {"schedule": "warmup_" * 40, "note": "a long note " * 10}}
            db.execute("UPDATE runs SET spec_json = ? WHERE id = ?", (json.dumps(spec), run.id))
    runs, read = project.store.runs(kind="train"), Outputs(project)
    path = page.write(build.gather("wide", runs, result_rows(runs, read), [], read), tmp_path / "report-wide.html")
    assert browser.overflows(path) == {"page": False, "table": True}
