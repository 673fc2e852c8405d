"""kpush: turn specs into kernel folders, record them, and push them as backend slots allow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import competition as competitions
from .backends.base import KernelState, Status
from .errors import BackendError, SlotsFull, SpecError, ToolkitError
from .project import Project
from .render import KernelOptions, kernel_metadata, render_train_notebook, write_kernel_folder
from .spec import RunSpec, build_spec
from .store import Run

WEIGHTS_DATASET = "timm-weights"
ACTIVE = (Status.QUEUED, Status.RUNNING, Status.CANCEL_REQUESTED)


@dataclass(frozen=True)
class Planned:
    """A rendered run: its spec, kernel folder, and anything the user should be told about it."""

    spec: RunSpec
    folder: Path
    notebook: Any
    metadata: dict
    notice: str = ""
    weights: tuple[str, str] | None = None  # (dataset ref, file name) of the pretrained weights
    labels: dict | None = None  # the labels CSV and its columns, or None for class folders


def plan_train(project: Project, archs: list[str], params: dict[str, Any],
               pretrained: bool | None = None) -> list[Planned]:
    """Validate every run and render its kernel folder; nothing is stored or pushed yet."""
    config = project.config
    if not archs:
        raise SpecError("no architecture given", "pass --arch NAME (repeatable)")
    defaults = {**config.train, **{k: v for k, v in params.items() if v is not None}}
    rows = [({**defaults, "arch": arch, "competition": params.get("competition") or config.competition}, "")
            for arch in archs]
    return plan_runs(project, rows, pretrained)


def plan_runs(project: Project, rows: list[tuple[dict[str, Any], str]],
              pretrained: bool | None = None) -> list[Planned]:
    """Render one kernel per (raw values, where) row; `where` names the row in errors (e.g. a sweep line)."""
    config = project.config
    specs = [build_spec(values, where) for values, where in rows]
    names = list(dict.fromkeys(s.competition for s in specs))
    if config.backend == "local":
        for name in names:
            competitions.find_competition(config.resolve(config.competitions_root), name, config.labels_given)
    # How each competition labels its images. On the Kaggle backend its folder may exist only on Kaggle:
    # then the configured columns are used when given, else class folders (see kernel_labelling).
    labels = {name: competitions.kernel_labelling(config.resolve(config.competitions_root) / name,
                                                  config.labels_given) for name in names}
    planned = [_prepare(project, spec, pretrained, labels[spec.competition]) for spec in specs]
    for item in planned:  # written only once every run is known to be valid
        write_kernel_folder(item.folder, item.notebook, item.metadata)
    return planned


def _prepare(project: Project, spec: RunSpec, pretrained: bool | None, labels: dict | None = None) -> Planned:
    weights, sources, notice = None, (), ""
    wanted = spec.pretrained if pretrained is None else pretrained
    if project.config.backend == "local" and wanted:
        local = project.config.resolve(project.config.datasets_root) / WEIGHTS_DATASET / f"{spec.arch}.pth"
        if local.is_file():
            weights = (f"{project.username}/{WEIGHTS_DATASET}", f"{spec.arch}.pth")
            sources = (weights[0],)
        elif pretrained:
            raise SpecError(f"no pretrained weights for {spec.arch} on this machine (looked for {local})",
                            "drop --pretrained to train from scratch, or put a timm state dict there")
        else:
            notice = f"{spec.arch}: no local pretrained weights, training from scratch"
            wanted = False
    elif wanted and not project.config.internet:  # on Kaggle timm downloads the weights at run time
        raise SpecError(f"{spec.arch}: pretrained weights need internet in the kernel",
                        "drop --no-internet, or train from scratch with --scratch")
    spec = build_spec({**spec.to_dict(), "pretrained": bool(wanted)})
    options = train_options(project, sources)
    return Planned(spec, project.config.kernels_dir / spec.slug,
                   render_train_notebook(spec, weights, labels=labels),
                   kernel_metadata(spec.slug, spec.competition, options), notice, weights, labels)


def train_options(project: Project, dataset_sources: tuple[str, ...] = ()) -> KernelOptions:
    """How a training (or pack) kernel is pushed, from the configuration."""
    config = project.config
    return KernelOptions(username=project.username, gpu=True, accelerator=config.accelerator,
                         internet=config.internet, private=config.private, dataset_sources=dataset_sources)


def record(project: Project, planned: list[Planned], force: bool = False) -> list[tuple[Run, str]]:
    """Add runs to the store. The same spec again is skipped (with --force: a new version)."""
    results = []
    for item in planned:
        existing = project.store.latest(item.spec.slug, project.config.backend)
        if existing and not force:
            results.append((existing, f"already pushed as version {existing.version} ({existing.status.value}); "
                                      "use --force for a new version" if existing.version else
                                      "already waiting to be pushed"))
            continue
        if existing and existing.status in ACTIVE:
            raise BackendError(f"{item.spec.slug} is still {existing.status.value}",
                               "wait for it to finish before forcing a new version")
        if existing:
            run = project.store.requeue(existing.id)
        else:
            run = project.store.add_run(item.spec.slug, "train", project.config.backend, item.spec.competition,
                                        item.spec.content_hash, item.spec.to_dict())
        results.append((run, "new"))
    return results


def sync(project: Project, competition: str | None = None) -> list[Run]:
    """Refresh every unfinished run's status, then push waiting runs while slots are free."""
    store, backend = project.store, project.backend
    runs = store.runs(backend=project.config.backend, competition=competition)
    states: dict = {}  # one status call per kernel version, however many runs it trains
    for run in runs:
        if run.version is not None and not run.status.terminal and run.status != Status.NEW:
            state = _run_state(project, run, states)
            if state.status != run.status or state.failure_message != run.failure_message:
                store.observe(run.id, state.status, state.failure_message)
    waiting = [r for r in store.runs(backend=project.config.backend, competition=competition)
               if r.status == Status.NEW]
    active = len({(r.kernel, r.version) for r in store.runs(backend=project.config.backend) if r.status in ACTIVE})
    for run in waiting:
        if store.get(run.id).status != Status.NEW:  # pushed meanwhile, with its pack
            continue
        if not getattr(backend, "queues", False) and active >= project.config.concurrency:
            break
        if push_run(project, run) is None:
            break
        active += 1
    return store.runs(backend=project.config.backend, competition=competition)


def _run_state(project: Project, run: Run, cache: dict) -> KernelState:
    """The run's state: its kernel's, or for a packed run that ended, its own line of the pack's results."""
    key = (run.kernel, run.version)
    if key not in cache:
        state = project.backend.status(run.kernel, run.version)
        members = {}
        if run.host:
            from .pack import member_states
            members = member_states(project, run.kernel, run.version, state)
        cache[key] = (state, members)
    state, members = cache[key]
    return members.get(run.slug, state)


def push_run(project: Project, run: Run) -> Run | None:
    """Push the kernel of one NEW run (with the runs packed beside it); None when no slot is free."""
    folder = project.config.kernels_dir / run.kernel
    if not (folder / "kernel-metadata.json").is_file():
        raise BackendError(f"kernel folder {folder} is missing", "render it again with kpush")
    together = [r.id for r in project.store.runs(backend=run.backend)
                if r.status == Status.NEW and r.kernel == run.kernel] if run.host else [run.id]
    leader = min(together)  # a pack is claimed through its first run, so two commands cannot both push it
    claim = project.store.claim(leader)  # one command pushes a kernel; see Store.claim
    if claim is None:  # another command is pushing it or already has
        return project.store.get(run.id)
    if claim.previous_at is not None:  # an earlier push was cut off: did it reach the backend?
        found = getattr(project.backend, "find_pushed", lambda slug, since: None)(run.kernel, claim.previous_at)
        if found is not None:
            project.store.record_push(together, found.version, found.url)
            return project.store.get(run.id)
    try:
        result = project.backend.push(folder)
    except SlotsFull:
        project.store.release(leader)
        return None
    project.store.record_push(together, result.version, result.url)
    return project.store.get(run.id)


def failed_runs(project: Project, names: list[str] | None = None) -> list[Run]:
    """The latest version of each training run that ended in ERROR (or was cancelled), matched by slug,
    spec name or arch when `names` are given."""
    latest: dict[str, Run] = {}
    for run in project.store.runs(backend=project.config.backend, kind="train"):
        latest[run.slug] = run
    failed = [r for r in latest.values() if r.status in (Status.ERROR, Status.CANCEL_ACKNOWLEDGED)]
    if not names:
        return failed
    return match_runs(failed, names, lambda name: SpecError(f"no failed run matches '{name}'",
                                                            "kstatus lists the runs and their states"))


def match_runs(runs: list[Run], names: list[str], unmatched: Callable[[str], ToolkitError]) -> list[Run]:
    """The runs named by slug, spec name or arch, each once, in the order named; `unmatched(name)` is the
    error for a name that matches none."""
    chosen: list[Run] = []
    for name in names:
        match = [r for r in runs if name in (r.slug, r.spec.get("name"), r.spec.get("arch"))]
        if not match:
            raise unmatched(name)
        chosen.extend(m for m in match if m not in chosen)
    return chosen


def retry(project: Project, runs: list[Run]) -> list[Run]:
    """Put failed runs back in the queue (a new version is pushed when a slot is free)."""
    return [project.store.requeue(run.id) for run in runs]
