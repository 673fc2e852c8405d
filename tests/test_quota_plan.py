"""Planning a sweep against the quota: estimates (recorded, the seed's figures, scaled, timm's, guessed), the
sessions packing makes (longest with next-longest; together on a GPU each, else in turn; split where a session
would outlast the limit), runs too long for any session, and the week each session fits in."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from toolkit.backends.base import Quota
from toolkit.competitions.demo import build_competition
from toolkit.core.config import load_config
from toolkit.project import Project
from toolkit.runs.costs import benchmarks, priors
from toolkit.runs.costs import estimate as estimates
from toolkit.runs.costs.quota import plan, too_long
from toolkit.runs.costs.sessions import (PLAN_SHARE, WEEK_S, Session, fit_weeks, gpus_for, over_limit, plan_limit_min,
                                         plan_sessions, week_start)
from toolkit.specs.spec import build_spec

OVERHEAD = estimates.SESSION_OVERHEAD_MIN
CONVNEXT = dict(arch="convnext_small_in22k", item="Resize(480, method='squish')",
                batch="aug_transforms(size=224, min_scale=0.75)", epochs=12, competition="paddy-disease-classification")


def spec(**values):
    return build_spec({"competition": "digits-demo", **values})


def test_estimate_uses_recorded_minutes_then_the_seed_then_timm_then_a_guess(tmp_path, monkeypatch):
    project = Project(load_config(tmp_path, backend="local"))
    recorded = spec(arch="resnet18", epochs=4, pretrained=False)
    run = project.store.add_run(recorded.slug, "train", "local", recorded.competition, recorded.content_hash,
                                recorded.to_dict())
    project.store.set_outputs(run.id, ".", {"minutes_per_epoch": 0.5})
    seeded, benchmarked = build_spec(CONVNEXT), spec(arch="resnet34", epochs=4)
    known, seed, timm = estimates.estimate(project, [recorded, seeded, benchmarked])
    assert known.source == "recorded" and known.measured
    assert known.minutes == pytest.approx(5 * 0.5 + OVERHEAD)
    # the seed's 01:30 per epoch, 12 epochs + the frozen one + TTA; Paddy's folder is not here: Paddy's count
    assert seed.source == "seed" and not seed.measured and seed.minutes == pytest.approx(14 * 1.5 + OVERHEAD)
    assert timm.source == "timm" and 0 < timm.minutes_per_epoch < 1.5  # resnet34 costs less than convnext_small
    tables = benchmarks.shipped()
    monkeypatch.setattr(benchmarks, "shipped", lambda: benchmarks.Benchmarks([dict(tables.rows, resnet34=[])]))
    (guess,) = estimates.estimate(project, [benchmarked])  # in no table, of no known size
    assert guess.source == "guess"
    assert guess.minutes == pytest.approx(6 * estimates.DEFAULT_MIN_PER_EPOCH + OVERHEAD)


def test_the_seeds_figure_scales_with_the_competitions_images_and_the_size(tmp_path):
    build_competition(tmp_path / "competitions", name="small-paddy", limit=100)
    project = Project(load_config(tmp_path, backend="kaggle", username="me"), offline=True)
    images = len(list((tmp_path / "competitions" / "small-paddy" / "train_images").rglob("*.png")))
    small = build_spec({**CONVNEXT, "competition": "small-paddy"})
    bigger = build_spec({**CONVNEXT, "batch": "aug_transforms(size=448, min_scale=0.75)"})
    (scaled_down, scaled_up) = estimates.estimate(project, [small, bigger])
    assert scaled_down.minutes_per_epoch == pytest.approx(1.5 * images / priors.SEED_IMAGES)
    # 448 px has 4x the pixels of 224 (01:30 there): the model's cost grows 4x, what each image and batch cost
    # whatever the model does not, so 3x to 4x (scaling the seed's rows by pixels alone said 4x; the cost model's
    # scaling predicts the seed's own rows better, bench/results/cost_model.json)
    assert scaled_up.source == "seed, scaled" and 3 * 1.5 < scaled_up.minutes_per_epoch < 4 * 1.5


def test_a_pack_on_a_gpu_each_costs_its_longest_member_one_after_another_their_sum():
    minutes = [40.0, 30.0, 31.0, 10.0]
    one = spec(arch="resnet18", epochs=1, pretrained=False)  # 2 passes: (m - start-up) / 2 minutes per epoch
    ests = [estimates.Estimate(one, (m - OVERHEAD) / 2) for m in minutes]
    together = plan_sessions(ests, [True] * 4, size=2, gpus=2)
    # longest with next-longest: (40, 31) and (30, 10); sessions in the order of their first run in the sweep
    assert [s.members for s in together] == [(0, 2), (1, 3)]
    assert together[0].minutes == pytest.approx(40) and together[1].minutes == pytest.approx(30)
    assert together[0].idle_minutes == pytest.approx(9) and together[1].idle_minutes == pytest.approx(20)
    in_turn = plan_sessions(ests, [True] * 4, size=2, gpus=1)
    assert in_turn[0].minutes == pytest.approx(40 + 31 - OVERHEAD) and in_turn[0].idle_minutes == 0
    singles = plan_sessions(ests, [True, False, True, True], size=1, gpus=2)
    assert [s.members for s in singles] == [(0,), (2,), (3,)] and sum(s.minutes for s in singles) == 81


def test_packs_never_mix_competitions():
    ests = [estimates.Estimate(spec(arch="resnet18", epochs=1, competition=name), 1.0) for name in ("a-b", "c-d")]
    assert [s.members for s in plan_sessions(ests, [True, True], size=2, gpus=2)] == [(0,), (1,)]


def test_sessions_fill_this_week_in_the_sweeps_order_then_the_next_weeks():
    sessions = [Session((i,), m) for i, m in enumerate([60.0, 60.0, 600.0, 10.0, 60.0])]
    weeks = [s.week for s in fit_weeks(sessions, left_hours=2.2, allowed_hours=12)]
    assert weeks == [0, 0, 1, 1, 1]  # 10 minutes would fit in this week's last 12: it never jumps ahead
    assert [s.week for s in fit_weeks(sessions, left_hours=0.0, allowed_hours=12)] == [1, 1, 1, 2, 2]
    assert [s.week for s in fit_weeks([Session((0,), 900.0)], 1.0, 12)] == [1]  # longer than a week's: alone


def test_later_weeks_start_at_the_refresh_and_a_week_apart():
    assert week_start(0, 1000.0) is None
    assert week_start(1, 1000.0) == 1000.0 and week_start(3, 1000.0) == 1000.0 + 2 * WEEK_S
    assert week_start(1, None) == pytest.approx(time.time() + WEEK_S, abs=5)  # not said: a week from now


def test_gpus_per_session():
    assert gpus_for("NvidiaTeslaT4", runs_here=False) == 2  # "T4 x2" (kaggle 2.2.5)
    assert gpus_for("NvidiaL4X1", runs_here=False) == 1
    assert gpus_for("NvidiaTeslaT4", runs_here=True) == 1


def test_the_plan_fits_sessions_to_the_quota_unless_forced(tmp_path):
    class Quoted:  # a backend's quota answer, the only call planning makes
        runs_here = False
        def quota(self):
            return Quota(used_hours=29.0, allowed_hours=30.0, refresh_at=5000.0)

    project = Project(load_config(tmp_path, backend="local"), backend=Quoted())
    ests = [estimates.Estimate(spec(arch="resnet18", epochs=1, pretrained=False), 14.25)] * 3  # 31.5 min each
    fitted = plan(project, ests, [True] * 3, size=1)
    assert [s.week for s in fitted.sessions] == [0, 1, 1] and fitted.start(fitted.sessions[1]) == 5000.0
    assert [s.week for s in plan(project, ests, [True] * 3, size=1, force=True).sessions] == [0, 0, 0]


def test_sessions_are_planned_to_end_well_inside_the_session_limit():
    assert plan_limit_min(9 * 3600 - 300) == pytest.approx(PLAN_SHARE * (9 * 60 - 5))
    assert plan_limit_min(load_config(Path("."), backend="kaggle").session_timeout_s) < 9 * 60 * 0.85


def test_a_pack_that_would_outlast_the_limit_is_split():
    one = spec(arch="resnet18", epochs=1, pretrained=False)
    ests = [estimates.Estimate(one, (m - OVERHEAD) / 2) for m in [300.0, 250.0, 100.0, 90.0]]
    # one after another (one GPU): 300 + 250 would take 547 min, past a 400-minute limit; 100 + 90 fits
    in_turn = plan_sessions(ests, [True] * 4, size=2, gpus=1, limit_min=400)
    assert [s.members for s in in_turn] == [(0,), (1,), (2, 3)]
    assert all(s.minutes <= 400 for s in in_turn)
    # on a GPU each the pair costs its longer run: it fits, and stays a pair
    assert [s.members for s in plan_sessions(ests, [True] * 4, size=2, gpus=2, limit_min=400)] == [(0, 1), (2, 3)]
    assert [s.members for s in plan_sessions(ests, [True] * 4, size=2, gpus=1)] == [(0, 1), (2, 3)]  # no limit
    # four in turn: as many as fit in each session, longest first
    assert [s.members for s in plan_sessions(ests, [True] * 4, size=4, gpus=1, limit_min=400)] == [(0,), (1, 2),
                                                                                                  (3,)]


def test_a_run_too_long_alone_is_found_and_told_in_one_line(tmp_path):
    one = spec(arch="resnet18", epochs=1, pretrained=False)
    ests = [estimates.Estimate(one, m) for m in (250.0, 300.0, 10.0)]  # 503, 603 and 23 minutes
    assert over_limit(ests, [True, True, True], 400) == [0, 1]
    assert over_limit(ests, [True, False, True], 400) == [0]  # a run not pushed is not planned
    assert over_limit(ests, [True] * 3, None) == []  # no limit (this machine's runs)
    project = Project(load_config(tmp_path, backend="kaggle", username="me"), offline=True)
    quota_plan = plan(project, ests[:1], [True])
    error = too_long(project, quota_plan)
    assert quota_plan.too_long == (0,) and "\n" not in str(error)
    assert f"{one.slug} (8.4 h) is longer alone than the 7.1 h a session is planned to" in str(error)
    assert "fewer epochs" in str(error) and "session_timeout_s" in str(error)
    assert too_long(project, plan(project, ests[2:], [True])) is None


def test_this_machines_runs_have_no_session_plan_limit(tmp_path):
    project = Project(load_config(tmp_path, backend="local"))
    ests = [estimates.Estimate(spec(arch="resnet18", epochs=1, pretrained=False), 1000.0)]
    assert plan(project, ests, [True]).limit_min is None and not plan(project, ests, [True]).too_long
