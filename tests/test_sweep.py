"""Sweep files (parsing, validation, the two shipped sweeps against the seed's table), the GPU-hour
estimate, and ensemble member selection (top K, greedy) on synthetic outputs. Fast: no training."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from toolkit.core.config import load_config
from toolkit.core.errors import BackendError, EnsembleError, SpecError
from toolkit.core.status import Status
from toolkit.ensembles import members as select
from toolkit.project import Project
from toolkit.runs import schedule
from toolkit.runs.outputs.loaded import Outputs
from toolkit.runs.plan import plan_sweep
from toolkit.specs import sweep_file as sweep
from toolkit.specs.spec import build_spec
from toolkit.specs.transforms import parse_transforms

ROOT = Path(__file__).resolve().parent.parent
# The results table of the Paddy Doctor "Road to the Top" walkthrough the project comes from, copied verbatim,
# so that these checks never depend on that text being beside the checkout.
SEED_TABLE = """
Architecture item_tfms batch_tfms TTA Error Rate (First Run) Minutes per epoch (First Run) TTA Error Rate (Second Run)
convnext_small_in22k Resize((640,480)) aug_transforms(size=(288,224), min_scale=0.75) 0.0178* 01:51 0.0187
convnext_small_in22k Resize((640,480)) aug_transforms(size=(320,240), min_scale=0.75) 0.0202 02:07 0.0226
convnext_small_in22k Resize(480, method='squish') aug_transforms(size=224, min_scale=0.75) 0.0211 01:30 0.0211
convnext_small_in22k Resize(480) aug_transforms(size=224, min_scale=0.75) 0.0216 01:29 0.0202
vit_small_patch16_224 Resize(480) aug_transforms(size=224, min_scale=0.75) 0.0202* 00:44 0.0250
vit_small_patch16_224 Resize(480, method='squish') aug_transforms(size=224, min_scale=0.75) 0.0216 00:47 0.0245
vit_small_patch16_224 Resize(640, method=ResizeMethod.Pad, pad_mode=PadMode.Zeros) aug_transforms(size=224, min_scale=0.75) 0.0226 00:50 0.0221
swinv2_base_window12_192_22k Resize(480, method='squish') aug_transforms(size=192, min_scale=0.75) 0.0163* 02:30 0.0173
swinv2_base_window12_192_22k Resize(640, method=ResizeMethod.Pad, pad_mode=PadMode.Zeros) aug_transforms(size=192, min_scale=0.75) 0.0187 03:27 0.0192
swinv2_base_window12_192_22k Resize(480) aug_transforms(size=192, min_scale=0.75) 0.0197 03:22 0.0183
swin_small_patch4_window7_224 Resize(480, method='squish') aug_transforms(size=224, min_scale=0.75) 0.0202* 01:48 0.0207
swin_small_patch4_window7_224 Resize(480) aug_transforms(size=224, min_scale=0.75) 0.0207 01:47 0.0231
swin_small_patch4_window7_224 Resize(640, method=ResizeMethod.Pad, pad_mode=PadMode.Zeros) aug_transforms(size=224, min_scale=0.75) 0.0221 01:54 0.0183
"""


def specs_of(path: Path, base=None):
    loaded = sweep.load_sweep(path, base)
    return loaded, [build_spec(r.values, r.where) for r in loaded.rows]


def seed_table() -> list[tuple[str, str, str]]:
    """(arch, item, batch) of the 13 rows of the seed's results table, canonicalised."""
    table = SEED_TABLE.strip()
    rows = []
    for line in table.splitlines()[1:]:
        match = re.match(r"^(\S+) (Resize\(.*\)) (aug_transforms\(.*?\)) ", line)
        if match:
            arch, item, batch = match.groups()
            rows.append((arch, parse_transforms(item, "item"), parse_transforms(batch, "batch")))
    return rows


def test_small_sweep_is_the_seeds_table():
    loaded, specs = specs_of(ROOT / "sweeps" / "paddy-small.toml")
    table = seed_table()
    assert len(table) == 13 and len(specs) == 13
    assert sorted((s.arch, s.item, s.batch) for s in specs) == sorted(table)
    assert {s.competition for s in specs} == {"paddy-disease-classification"}
    assert all(s.epochs == 12 and s.lr == 0.01 and s.seed == 42 and s.pretrained for s in specs)
    accum = [s for s in specs if s.accum > 1]
    # the seed's accum=True rows: swinv2_base with Resize(480) and with padding, bs=16
    assert sorted(s.item for s in accum) == sorted(["Resize(480)", parse_transforms(
        "Resize(640, method=ResizeMethod.Pad, pad_mode=PadMode.Zeros)", "item")])
    assert all(s.arch == "swinv2_base_window12_192_22k" and s.bs == 16 and s.accum == 4 for s in accum)
    assert all(s.bs == 64 and s.accum == 1 for s in specs if s not in accum)


def test_priors_are_the_seeds_minutes_per_epoch_for_its_runs():
    """Each row of paddy-small.toml (the seed's runs) is estimated at the seed's own figure, read from its table."""
    from toolkit.runs.costs import priors

    clock = {}
    for line in SEED_TABLE.strip().splitlines()[1:]:
        match = re.match(r"^(\S+) (Resize\(.*\)) (aug_transforms\(.*?\)) \S+ (\d\d):(\d\d) ", line)
        arch, item, batch, minutes, seconds = match.groups()
        key = (arch, parse_transforms(item, "item"), parse_transforms(batch, "batch"))
        clock[key] = int(minutes) + int(seconds) / 60
    _, specs = specs_of(ROOT / "sweeps" / "paddy-small.toml")
    for spec in specs:
        found = priors.lookup(spec.arch, spec.item, spec.batch, spec.bs)
        assert found.how == "seed"
        assert found.minutes_per_epoch == pytest.approx(clock[(spec.arch, spec.item, spec.batch)])


# Road to the Top Part 3's `models` table (res = 640, 480): arch, item transform, aug_transforms size.
PART3_MODELS = [
    ("convnext_large_in22k", "Resize((640,480))", "224"),
    ("convnext_large_in22k", "Resize((640,480))", "(320,224)"),
    ("vit_large_patch16_224", "Resize(480, method='squish')", "224"),
    ("vit_large_patch16_224", "Resize((640,480))", "224"),
    ("swinv2_large_window12_192_22k", "Resize(480, method='squish')", "192"),
    ("swinv2_large_window12_192_22k", "Resize((640,480))", "192"),
    ("swin_large_patch4_window7_224", "Resize(480, method='squish')", "224"),
    ("swin_large_patch4_window7_224", "Resize((640,480))", "224"),
]


def test_large_sweep_is_part_3():
    _, specs = specs_of(ROOT / "sweeps" / "paddy-large.toml")
    table = [(arch, parse_transforms(item), parse_transforms(f"aug_transforms(size={size}, min_scale=0.75)"))
             for arch, item, size in PART3_MODELS]
    assert sorted((s.arch, s.item, s.batch) for s in specs) == sorted(table)
    assert all(s.accum == 2 and s.bs == 32 for s in specs)  # Part 3: bs=64//2 with GradientAccumulation(64)
    assert all(s.epochs == 12 and s.lr == 0.01 and s.pretrained and s.precision == "fp16" for s in specs)
    assert len({s.slug for s in specs}) == 8


def test_readme_weights_reproduce_part_3s_average():
    """Part 3 averaged its 8 runs' predictions plus the two vit_large ones again (`tta_prs += tta_prs[2:4]`):
    the docs' `ksubmit ensemble --weights` line (docs/sweeps.md) must give each vit_large member weight 2, the rest 1."""
    import shlex
    from types import SimpleNamespace

    from toolkit.runs.lookup import match_runs

    line = next(line for line in (ROOT / "docs" / "sweeps.md").read_text().splitlines()
                if "ksubmit ensemble --run" in line and "--weights" in line)
    args = shlex.split(line[line.index("ksubmit"):].strip("`"))
    names = [args[i + 1] for i, a in enumerate(args) if a == "--run"]
    weights = [float(w) for w in args[args.index("--weights") + 1].split(",")]
    _, specs = specs_of(ROOT / "sweeps" / "paddy-large.toml")
    runs = [SimpleNamespace(slug=s.slug, spec=s) for s in specs]
    members = match_runs(runs, names, lambda name: AssertionError(name))
    assert len(members) == len(weights) == 8
    assert weights == [2.0 if "vit_large" in m.spec.arch else 1.0 for m in members]


def test_a_sweep_file_that_is_a_folder(tmp_path):
    with pytest.raises(SpecError, match="is a folder"):
        sweep.load_sweep(tmp_path)


@pytest.mark.parametrize("name, count", [("paddy-small.toml", 13), ("paddy-large.toml", 8)])
def test_sweeps_render_one_kernel_per_run(tmp_path, monkeypatch, name, count):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "not-a-real-key")
    monkeypatch.delenv("KAGGLE_API_TOKEN", raising=False)
    project = Project(load_config(tmp_path, backend="kaggle"))
    _, planned = plan_sweep(project, ROOT / "sweeps" / name)
    assert len(planned) == count
    folders = sorted(p.name for p in (tmp_path / "kernels").iterdir())
    assert folders == sorted(p.spec.slug for p in planned)
    for item in planned:
        source = "\n".join(c.source for c in item.notebook.cells)
        assert f"item_tfms = {item.spec.item}" in source and f"batch_tfms = {item.spec.batch}" in source
        assert item.metadata["competition_sources"] == ["paddy-disease-classification"]


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


def test_rows_override_defaults_and_base(tmp_path):
    path = write(tmp_path, '[defaults]\nepochs = 3\narch = "resnet18"\n[[run]]\nname = "a"\n'
                           '[[run]]\nname = "b"\nepochs = 5\n')
    _, specs = specs_of(path, {"competition": "digits-demo", "epochs": 9, "bs": 8})
    assert [(s.name, s.epochs, s.bs) for s in specs] == [("a", 3, 8), ("b", 5, 8)]


@pytest.mark.parametrize("text, message", [
    ('[[run]]\narch = "resnet18"\nepoch = 3\n', r"s\.toml: run 1 \(resnet18\): unknown run parameter 'epoch'.*'epochs'"),
    ('[[run]]\nname = "x"\narch = "resnet18"\n[[run]]\nname = "x"\narch = "resnet34"\n',
     r"s\.toml: run 2 \(x\): duplicate run name 'x' \(also run 1\)"),
    ('[[run]]\narch = "resnet18"\n[[run]]\narch = "resnet18"\n', r"run 2 \(resnet18\): the same run as s\.toml: run 1"),
    ('[default]\nepochs = 1\n[[run]]\narch = "resnet18"\n', r"unknown top-level key 'default'.*'defaults'"),
    ('[defaults]\nepochs = 1\n', r"no runs"),
    ('[[run]]\narch = "resnet18"\nlr = "fast"\n', r"run 1 \(resnet18\): lr must be"),
    ('[[run]]\narch = "resnet18"\nitem = "__import__(\'os\')"\n', r"run 1 \(resnet18\): item"),
    ('[[run]\narch = 1', r"s\.toml is not valid TOML"),
])
def test_bad_sweeps_name_the_file_and_row(tmp_path, monkeypatch, text, message):
    project = Project(load_config(tmp_path, backend="local"))
    with pytest.raises(SpecError, match=message):
        plan_sweep(project, write(tmp_path, text))
    assert not (tmp_path / "kernels").exists()  # nothing rendered for an invalid sweep


def _plan_says(sweep_file: Path, slug: str, force: bool) -> str:
    """The action column of `kpush sweep --dry-run`'s table, for the row of `slug`."""
    from typer.testing import CliRunner

    from toolkit import cli

    args = ["sweep", str(sweep_file), "--dry-run", *(["--force"] if force else [])]
    result = CliRunner().invoke(cli.push_app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if slug in line)
    return row.split("│")[-2].strip()


def _record_does(project, planned, force: bool) -> str:
    try:
        ((_, action),) = schedule.record(project, planned, force)
    except BackendError as exc:
        assert "still RUNNING" in exc.message or "still QUEUED" in exc.message
        return "refused"
    return "push" if action == "new" else "skip"


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("state", [None, Status.NEW, Status.QUEUED, Status.RUNNING, Status.COMPLETE, Status.ERROR])
def test_the_sweep_plan_says_what_recording_does(tmp_path, monkeypatch, state, force):
    """The dry run's table and the push agree, --force on a run still queued or running included (refused)."""
    (tmp_path / "toolkit.toml").write_text('backend = "kaggle"\nusername = "someone"\n')  # no credentials needed
    monkeypatch.setenv("TOOLKIT_PROJECT", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "300")
    project = Project(load_config(tmp_path))
    sweep_file = write(tmp_path, '[[run]]\narch = "resnet18"\ncompetition = "tiny-comp"\n')
    _, planned = plan_sweep(project, sweep_file)
    if state is not None:
        ((run, _),) = schedule.record(project, planned)
        if state != Status.NEW:
            project.store.record_push([run.id], 1, "https://example/1")
            project.store.observe(run.id, state)
    said = _plan_says(sweep_file, planned[0].spec.slug, force).split(" ")[0]  # push, skip (pushed), refused
    if not force:
        expected = "push" if state is None else "skip"
    else:
        expected = "refused" if state in (Status.QUEUED, Status.RUNNING) else "push"
    assert (said, _record_does(project, planned, force)) == (expected, expected)


# -- member selection ------------------------------------------------------------------------


def fake_run(project, tmp_path, name, valid_probs, targets, seed=42, tta_error=None, files=None):
    spec = build_spec({"arch": "resnet18", "competition": "digits-demo", "name": name, "seed": seed})
    run = project.store.add_run(spec.slug, "train", "local", spec.competition, spec.content_hash, spec.to_dict())
    project.store.record_push([run.id], 1, "u")
    project.store.set_status(run.id, Status.COMPLETE)
    folder = tmp_path / name
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({"tta_error": 0.5 if tta_error is None else tta_error}))
    n = len(targets)
    vocab = ["a", "b"]
    torch.save({"probs": torch.full((2, 2), 0.5), "files": ["t1.png", "t2.png"], "vocab": vocab,
                "valid_probs": torch.tensor(valid_probs, dtype=torch.float32),
                "valid_targets": torch.tensor(targets),
                "valid_files": files or [f"v{i}.png" for i in range(n)]}, folder / "tta.pkl")
    return project.store.set_outputs(run.id, project.kept(folder), {"tta_error": tta_error})


def test_greedy_picks_complementary_runs(tmp_path):
    project = Project(load_config(tmp_path, backend="local"))
    targets = [0, 0, 1, 1]
    # a: right on 0,1,2; b: right on 1,2,3 (confident where a is wrong); c: always wrong
    a = fake_run(project, tmp_path, "a", [[.9, .1], [.6, .4], [.4, .6], [.55, .45]], targets, tta_error=.25)
    b = fake_run(project, tmp_path, "b", [[.45, .55], [.6, .4], [.4, .6], [.1, .9]], targets, tta_error=.25)
    c = fake_run(project, tmp_path, "c", [[.2, .8], [.3, .7], [.7, .3], [.8, .2]], targets, tta_error=1.0)
    members, weights, steps = select.greedy([a, b, c], Outputs(project))
    assert {m.slug for m in members} == {a.slug, b.slug} and len(weights) == 2
    assert steps[-1]["valid_error"] == 0.0
    assert [m.slug for m in select.top_k([c, b, a], 2)] == sorted([a.slug, b.slug])


def test_greedy_refuses_different_splits(tmp_path):
    project = Project(load_config(tmp_path, backend="local"))
    a = fake_run(project, tmp_path, "a", [[.9, .1]], [0], seed=1)
    b = fake_run(project, tmp_path, "b", [[.9, .1]], [0], seed=2)
    with pytest.raises(EnsembleError, match="one validation split"):
        select.greedy([a, b], Outputs(project))
    c = fake_run(project, tmp_path, "c", [[.9, .1]], [0], seed=1, files=["other.png"])
    with pytest.raises(EnsembleError, match="different images"):
        select.greedy([a, c], Outputs(project))


@pytest.mark.parametrize("weights", [[float("nan")], [float("inf")], [-1.0], [0.0]])
def test_choose_refuses_weights_that_are_not_finite_and_positive(weights):
    with pytest.raises(EnsembleError, match="finite and non-negative"):
        select.choose([object()], None, None, weights, None)  # type: ignore[list-item]
