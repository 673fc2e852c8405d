"""ksubmit submits an ensemble once: a rerun after a cut-off submit finds the submission that arrived."""

from __future__ import annotations

import json
import shutil

from toolkit.competitions.demo import build_competition
from toolkit.core.config import load_config
from toolkit.core.status import Status
from toolkit.ensembles.submit import _submit
from toolkit.project import Project


def _finished_ensemble(tmp_path):
    build_competition(tmp_path / "competitions", limit=60)
    project = Project(load_config(tmp_path))
    run = project.store.add_run("ensemble-digits-demo-12345678", "ensemble", "local", "digits-demo", "12345678", {})
    project.store.record_push([run.id], 1, "file://x")
    project.store.set_status(run.id, Status.COMPLETE)
    out = tmp_path / "outputs" / run.slug / "v1"
    out.mkdir(parents=True)
    shutil.copy(tmp_path / "competitions" / "digits-demo" / "solution.csv", out / "submission.csv")
    return project, project.store.set_outputs(run.id, project.kept(out), {})


def _board(tmp_path):
    return json.loads((tmp_path / ".toolkit" / "local" / "submissions.json").read_text())


def test_a_cut_off_submit_is_found_not_repeated(tmp_path):
    project, run = _finished_ensemble(tmp_path)
    # The earlier command recorded its intent, submitted, and died before recording the reply.
    cut = project.store.add_submission("local", "digits-demo", run.id, ["a"], [1.0])
    project.backend.submit("digits-demo", project.run_folder(run) / "submission.csv", f"msg ({run.slug} v1)")

    sub, sent = _submit(project, "digits-demo", run, [], [1.0], "msg")
    assert sent and sub.id == cut.id and sub.ref == "1" and sub.score == 1.0
    assert len(_board(tmp_path)) == 1


def test_a_finished_submission_is_reused_unless_forced(tmp_path):
    project, run = _finished_ensemble(tmp_path)
    first, sent = _submit(project, "digits-demo", run, [], [1.0], "msg")
    again, sent_again = _submit(project, "digits-demo", run, [], [1.0], "msg")
    assert sent and not sent_again and again.id == first.id and len(_board(tmp_path)) == 1
    forced, sent_forced = _submit(project, "digits-demo", run, [], [1.0], "msg", force=True)
    assert sent_forced and forced.id != first.id and len(_board(tmp_path)) == 2
