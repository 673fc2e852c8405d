"""The training kernel's learner: fastai's `vision_learner` on a timm architecture, as the seed's train() makes
it, plus what a Kaggle session needs: gradient accumulation, pretrained weights from an attached file, mixed
precision where the GPU has it, channels_last on the fast data path, and a plain-text log.

Pasted into training kernels (see render.runtime_source): imports only what Kaggle's image has.
"""

import torch
from fastai.vision.all import GradientAccumulation, MixedPrecision, ProgressCallback, error_rate, noop, vision_learner

from .images import pipeline_of

PRECISIONS = ("fp32", "fp16", "bf16")


def effective_precision(precision, gpu=None, bf16=None):
    "What runs: fp32 without a GPU (mixed precision needs one); fp16 where bf16 would be emulated (a T4)."
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    gpu = torch.cuda.is_available() if gpu is None else gpu
    if not gpu:
        return 'fp32'
    if bf16 is None and precision == 'bf16':
        bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
    return 'fp16' if precision == 'bf16' and not bf16 else precision


def precision_of(learn):
    "The precision a learner trains in, read from its MixedPrecision callback."
    mixed = [cb for cb in learn.cbs if isinstance(cb, MixedPrecision)]
    return mixed[0].amp_mode.value if mixed else 'fp32'


def is_channels_last(model):
    "Whether the model's convolution weights are channels_last (a model without them never is)."
    # Only weights whose two layouts differ tell: depthwise and 1x1 kernels are contiguous either way.
    weights = [p for p in model.parameters() if p.ndim == 4 and p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1]
    return bool(weights) and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
                                 for p in weights)


def make_learner(dls, arch, pretrained=True, accum=1, precision='fp32', weights_file=None, channels_last=None):
    """vision_learner(dls, arch, metrics=error_rate) as the seed makes it. `accum`: batches per optimizer step.
    `weights_file`: pretrained weights attached as a dataset, for kernels without internet. `channels_last`
    (default: on the fast path on a GPU): faster convolutions with mixed precision; values unchanged."""
    # fastai's GradientAccumulation counts samples, so `accum` batches of dls.bs make one step.
    cbs = [GradientAccumulation(accum * dls.bs)] if accum > 1 else []
    extra = dict(pretrained_cfg_overlay=dict(file=str(weights_file))) if pretrained and weights_file else {}
    learn = vision_learner(dls, arch, metrics=error_rate, cbs=cbs, pretrained=pretrained, **extra)
    learn.remove_cb(ProgressCallback)  # HTML progress bars are noise in a kernel log
    learn.logger = noop  # EpochLog prints each epoch instead
    precision = effective_precision(precision)
    if precision == 'fp16': learn = learn.to_fp16()
    elif precision == 'bf16': learn = learn.to_bf16()
    gpu = torch.cuda.is_available()
    if channels_last if channels_last is not None else (pipeline_of(dls) == 'fast' and gpu):
        learn.model = learn.model.to(memory_format=torch.channels_last)
    print(f'{arch}: {len(dls.train_ds)} train / {len(dls.valid_ds)} valid images, classes {list(dls.vocab)}, '
          f'pretrained={pretrained}, precision={precision}, device={dls.device}, data pipeline={pipeline_of(dls)}')
    return learn
