"""Setting runs aside: a run whose own code failed is not worth a retry, and once set aside it no longer counts
in kpull outputs' exit code (nor in ensembles), while the registry keeps it and kstatus --all lists it."""

from __future__ import annotations

import nbformat
import pytest
from console import console, error_line

pytestmark = pytest.mark.e2e


@pytest.fixture
def project(tmp_path):
    from toolkit.competitions.demo import build_competition

    build_competition(tmp_path / "competitions", limit=40)
    (tmp_path / "templates").mkdir()
    cells = [nbformat.v4.new_code_cell("arch = 'resnet18'", metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell("raise ValueError('this recipe writes no outputs')")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), tmp_path / "templates" / "broken.ipynb")
    return tmp_path


@pytest.mark.slow  # the advice and setting aside are also tested without a kernel (test_failures.py, test_flows.py)
def test_a_failed_runs_own_code_is_not_advised_a_retry_and_set_aside_it_stops_counting(project):
    pushed = console(project, "kpush", "train", "--arch", "resnet18", "--template", "broken", "--wait")
    line = error_line(pushed)
    assert pushed.returncode == 3 and "1 of 1 runs failed" in line
    assert "kpush retry" not in line and "own code failed" in line and "kpush aside RUN" in line, line
    assert "In [3]: ValueError: this recipe writes no outputs" in pushed.stdout  # In [1] params, [2] injected

    assert console(project, "kpull", "outputs").returncode == 3  # it still counts
    slug = [w for w in line.split() if w.startswith("resnet18-")][0].rstrip(" (;")
    aside = console(project, "kpush", "aside", slug)
    assert aside.returncode == 0 and "set aside" in aside.stdout.lower() and slug in aside.stdout

    pulled = console(project, "kpull", "outputs")
    assert pulled.returncode == 0, pulled.stderr
    status = console(project, "kstatus", "--no-refresh")
    assert slug not in status.stdout and "1 run set aside (kstatus --all lists them" in status.stderr
    listed = console(project, "kstatus", "--no-refresh", "--all")
    assert slug in listed.stdout and "(set aside)" in listed.stdout
    retried = console(project, "kpush", "retry")
    assert "no failed runs to retry" in retried.stdout  # an aside run is not retried unless counted again

    undone = console(project, "kpush", "aside", "--undo", slug)
    assert undone.returncode == 0 and slug in undone.stdout
    assert console(project, "kpull", "outputs").returncode == 3


def test_setting_aside_needs_a_run_or_failed(project):
    line = error_line(console(project, "kpush", "aside"))
    assert "name the runs to set aside" in line and "--failed" in line
    assert "no failed runs to set aside" in console(project, "kpush", "aside", "--failed").stdout
