"""A training kernel's outputs, written through the output contract (toolkit/kernel/contract.py): test-time
augmentation (TTA) on the validation and test sets, then tta.pkl, model.pth, model.json and metrics.json, each
checked against the contract before it is written, so a kernel never leaves outputs its readers refuse.

`save_learner(learn, test_files)` does it all for any notebook whose learner came from fastai's
`vision_learner` on a timm architecture, with an `EpochLog` among its callbacks while it trained (the rendered
training kernel calls its two halves, `tta_predictions` and `write_outputs`, from two template blocks).
Pasted into training kernels (see render.runtime_source): imports only what Kaggle's image has.
"""

import json
import os
import platform
import time
from pathlib import Path

import fastai
import timm
import torch
from fastai.vision.all import Normalize, error_rate

from ..contract import FORMAT, METRICS_FILE, MODEL_FILE, MODEL_INFO_FILE, TTA_FILE
from ..contract import check_metrics, check_model_info, check_tta
from .epochs import epoch_log, progress
from .images import pipeline_of
from .learners import is_channels_last, precision_of
from .pretrained import LOADED


def tta_predictions(learn, test_files):
    """TTA probabilities on the validation set (its error is reported) and on `test_files`: a dict of
    valid_probs, valid_targets, probs, files, tta_error and tta_seconds, what write_outputs saves."""
    progress('tta')
    valid_probs, valid_targets = learn.tta(dl=learn.dls.valid)
    tta_error = float(error_rate(valid_probs, valid_targets))
    start = time.perf_counter()
    probs, _ = learn.tta(dl=learn.dls.test_dl(test_files))
    seconds = time.perf_counter() - start  # what a code competition's rerun pays for its test images
    print(f'TTA error on the validation set: {tta_error:.4f}')
    return dict(valid_probs=valid_probs, valid_targets=valid_targets, probs=probs, files=list(test_files),
                tta_error=tta_error, tta_seconds=seconds)


def training_metrics(learn, predictions):
    "metrics.json's keys (all but output_mb) for a trained learner and its TTA predictions."
    rows = epoch_log(learn).rows
    main = [r for r in rows if r['phase'] != 'frozen'] or rows  # a fine-tune's frozen epoch is not typical
    gpu, n_test = torch.cuda.is_available(), len(predictions['files'])
    pretrained = bool(getattr(learn, 'pretrained', False)) and LOADED.get(arch_name(learn)) != 'none'
    return dict(
        format=FORMAT, arch=arch_name(learn), epochs=rows, valid_error=rows[-1]['error_rate'],
        tta_error=predictions['tta_error'], minutes_per_epoch=sum(r['seconds'] for r in main) / len(main) / 60,
        train_seconds=epoch_log(learn).train_seconds, precision=precision_of(learn), pretrained=pretrained,
        pipeline=pipeline_of(learn.dls), channels_last=is_channels_last(learn.model),
        weights=weights_source(learn, pretrained),
        n_train=len(learn.dls.train_ds), n_valid=len(learn.dls.valid_ds), n_test=n_test,
        tta_seconds_per_image=predictions['tta_seconds'] / max(1, n_test),
        gpu_name=torch.cuda.get_device_name(0) if gpu else None,
        peak_gpu_mem_gb=torch.cuda.max_memory_allocated() / 2**30 if gpu else None,
        versions=dict(python=platform.python_version(), torch=str(torch.__version__), fastai=fastai.__version__,
                      timm=timm.__version__),
    )


def weights_source(learn, pretrained):
    "Where the pretrained weights came from: 'file' (attached), 'hub' (timm's download) or 'none'."
    if arch_name(learn) in LOADED:  # a notebook's own learner, through runtime/pretrained.py
        return LOADED[arch_name(learn)]
    # vision_learner keeps its timm keyword arguments: a pretrained_cfg_overlay file means attached weights.
    if not pretrained:
        return 'none'
    return 'file' if getattr(learn, 'pretrained_cfg_overlay', None) else 'hub'


def arch_name(learn):
    "The architecture's name, as timm.create_model takes it."
    arch = getattr(learn, 'arch', None)
    return arch if isinstance(arch, str) else getattr(arch, '__name__', str(arch))


def relative_names(files, root):
    "File names as POSIX paths relative to `root` (as they are where `root` is mounted), else as given."
    names = []
    for f in files:
        path = Path(f)
        names.append(path.relative_to(root).as_posix() if root is not None and path.is_relative_to(root)
                     else path.as_posix())
    return names


def common_folder(files):
    return Path(os.path.commonpath([str(Path(f).parent) for f in files])) if len(files) else None


def write_outputs(learn, predictions, test_root=None, out_dir='.', spec=None, identity=None):
    """Write tta.pkl, model.pth, model.json and metrics.json into `out_dir`; returns the metrics. `test_root`:
    the folder test file names are relative to (default: the test files' common folder). `spec` and
    `identity`: the run these outputs belong to (the toolkit's checks read them; None in other notebooks)."""
    progress('outputs')
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = training_metrics(learn, predictions)
    files = predictions['files']
    tta = dict(format=FORMAT, probs=predictions['probs'].float().cpu(),
               files=relative_names(files, test_root if test_root is not None else common_folder(files)),
               vocab=[str(v) for v in learn.dls.vocab], spec=spec, metrics=metrics, identity=identity,
               valid_probs=predictions['valid_probs'].float().cpu(), valid_targets=predictions['valid_targets'].cpu(),
               valid_files=relative_names(learn.dls.valid_ds.items, learn.dls.path))
    torch.save(check_tta(tta), out/TTA_FILE)
    write_model(learn, out, identity, spec)
    metrics['output_mb'] = sum(f.stat().st_size for f in out.iterdir() if f.is_file()) / 2**20
    (out/METRICS_FILE).write_text(json.dumps(check_metrics(metrics), indent=2))
    print(f'wrote {TTA_FILE}, {MODEL_FILE}, {MODEL_INFO_FILE} and {METRICS_FILE} to {out} '
          f'({metrics["output_mb"]:.1f} MB)')
    return metrics


def write_model(learn, out, identity=None, spec=None):
    """What predicting on a test set this kernel never saw needs (a code competition's rerun), offline, on
    Kaggle's image, without the toolkit and without unpickling code: the weights as a plain state dict, and as
    JSON how to rebuild the model (fastai's create_timm_model, as vision_learner made it) and its input
    normalisation."""
    norm = next((t for t in learn.dls.after_batch.fs if isinstance(t, Normalize)), None)
    info = dict(arch=arch_name(learn), vocab=[str(v) for v in learn.dls.vocab], identity=identity,
                item=(spec or {}).get('item'), batch=(spec or {}).get('batch'),
                normalize=[norm.mean.flatten().tolist(), norm.std.flatten().tolist()] if norm else None)
    check_model_info(info)
    torch.save({k: v.detach().cpu().contiguous() for k, v in learn.model.state_dict().items()}, Path(out)/MODEL_FILE)
    (Path(out)/MODEL_INFO_FILE).write_text(json.dumps(info, indent=2))


def save_learner(learn, test_files, test_root=None, out_dir='.', spec=None, identity=None):
    """TTA on the validation and test sets, then every output the toolkit reads (see write_outputs)."""
    epoch_log(learn)  # before TTA's minutes: without it there are no epochs to write
    return write_outputs(learn, tta_predictions(learn, test_files), test_root, out_dir, spec, identity)
