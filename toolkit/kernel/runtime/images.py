"""The training kernel's data path: the seed's (loader workers decode and resize every image with PIL) or the
fast one (workers only read file bytes; the GPU decodes each batch with nvJPEG and does the item `Resize`
there, then fastai's batch augmentations run as before). Validation and TTA see the same pixels on both (same
crop box, bilinear antialiased resize as PIL does, uint8 rounding); only where the work happens changes.

Pasted into training kernels (see render.runtime_source): imports only what Kaggle's image has. No
`from __future__ import annotations`: fastai reads `encodes`' annotations to dispatch on ByteBatch.
"""

import io
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from fastai.vision.all import (CategoryBlock, DataBlock, Image, ImageBlock, IntToFloatTensor, PILImage, RandomSplitter,
                               RandTransform, Resize, ResizeMethod, TensorImage, TfmdDL, TransformBlock,
                               default_device, fa_collate, get_files)
from torchvision.io import ImageReadMode, decode_image, decode_jpeg

PIPELINES = ("auto", "fast", "seed")


class ImageBytes(bytes):
    "An image as its undecoded file bytes: all a loader worker does is read the file."
    @classmethod
    def create(cls, fn): return cls(Path(fn).read_bytes())


class ByteBatch:
    "A batch of undecoded images. Not a tensor, so it stays on the CPU until GPUDecodeResize decodes it."
    def __init__(self, items): self.items = list(items)


class BytesDL(TfmdDL):
    "Collates image bytes into a ByteBatch; everything else (labels) as fastai does."
    def create_batch(self, b):
        return tuple(ByteBatch(col) if isinstance(col[0], ImageBytes) else fa_collate(list(col)) for col in zip(*b))


def decode_batch(items, device):
    "uint8 RGB CHW tensors on `device`: nvJPEG in one batched call on a GPU, else (or for PNG etc.) the CPU."
    data = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in items]
    if device.type == 'cuda' and all(b[:3] == b'\xff\xd8\xff' for b in items):
        try: return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
        except RuntimeError as e: print(f'GPU decode failed ({e}); decoding this batch on the CPU')
    return [decode_on_cpu(d, b).to(device, non_blocking=True) for d, b in zip(data, items)]


def decode_on_cpu(data, raw):
    "torchvision decodes JPEG, PNG, WebP and GIF; other formats (BMP, TIFF, PNM) go through PIL, as fastai reads them."
    try:
        img = decode_image(data, mode=ImageReadMode.RGB)
        return img[0] if img.ndim == 4 else img  # an animated GIF: its first frame, as PIL shows it
    except RuntimeError:
        return torch.from_numpy(np.array(PILImage.create(io.BytesIO(raw)).convert('RGB'))).permute(2, 0, 1).contiguous()


class GPUDecodeResize(RandTransform):
    "fastai's `Resize` (crop or squish, bilinear) done batch-wise on the batch's device after decoding."
    split_idx, order = None, 1  # every split, before IntToFloatTensor
    def __init__(self, size, method):
        super().__init__(p=1.)
        (self.w, self.h), self.method = size, method  # fastai stores Resize sizes as (w, h)
    def before_call(self, b, split_idx): self.random = not split_idx  # as Resize: random crop box unless validating
    def crop_box(self, h, w):
        if self.method == ResizeMethod.Squish: return 0, 0, h, w
        m = w / self.w if w / self.w < h / self.h else h / self.h
        ch, cw = int(m * self.h), int(m * self.w)
        pw, ph = (random.random(), random.random()) if self.random else (0.5, 0.5)
        top, left = int(ph * (h - ch)), int(pw * (w - cw))
        return top, left, ch, cw
    def encodes(self, x: ByteBatch) -> TensorImage:
        imgs = decode_batch(x.items, default_device())
        out = torch.empty(len(imgs), 3, self.h, self.w, dtype=torch.uint8, device=imgs[0].device)
        groups = {}  # one interpolate call per crop shape (one per batch for same-sized images)
        for i, img in enumerate(imgs):
            top, left, ch, cw = self.crop_box(*img.shape[-2:])
            groups.setdefault((ch, cw), []).append((i, img[:, top:top + ch, left:left + cw]))
        for members in groups.values():
            idx, crops = zip(*members)
            small = F.interpolate(torch.stack(crops).float(), size=(self.h, self.w), mode='bilinear',
                                  antialias=True, align_corners=False)
            out[list(idx)] = small.round_().clamp_(0, 255).to(torch.uint8)
        return TensorImage(out)


def gpu_resize_for(item_tfms):
    "The GPU equivalent of the item transforms, or None (then the seed path runs): one bilinear crop/squish Resize."
    tfms = [t for t in (item_tfms if isinstance(item_tfms, (list, tuple)) else [item_tfms]) if t is not None]
    if len(tfms) != 1 or type(tfms[0]) is not Resize: return None
    r = tfms[0]
    if r.method not in (ResizeMethod.Crop, ResizeMethod.Squish) or r.mode != Image.BILINEAR: return None
    return GPUDecodeResize(r.size, r.method)


def choose_pipeline(pipeline, item_tfms, gpu=None):
    """('fast', its GPUDecodeResize) or ('seed', None) for PIPELINE: 'auto' is fast on a GPU; fast falls back to
    the seed path, with a note, for item transforms without a GPU equivalent."""
    if pipeline not in PIPELINES:
        raise ValueError(f"pipeline must be one of {', '.join(PIPELINES)}, not {pipeline!r}")
    gpu = torch.cuda.is_available() if gpu is None else gpu
    resize = gpu_resize_for(item_tfms)
    fast = pipeline == 'fast' or (pipeline == 'auto' and gpu)
    if fast and resize is None:
        print(f'fast data path: no GPU equivalent for item transforms {item_tfms!r}; using the seed pipeline')
    return ('fast', resize) if fast and resize is not None else ('seed', None)


def pipeline_of(dls):
    "Which data path built `dls`."
    return 'fast' if isinstance(dls.train, BytesDL) else 'seed'


def image_files(folder, extensions):
    "The images under `folder` with one of `extensions` (the toolkit's competition check uses the same rule)."
    return get_files(folder, extensions=extensions)


def image_dataloaders(folder, get_items, get_y, valid_pct, seed, bs, item_tfms, batch_tfms, pipeline='seed', **kwargs):
    """The seed's ImageDataLoaders.from_folder(valid_pct, seed) (there `get_y` gives an image its folder's
    name), spelled out so it reads the files the competition check reads; the fast path (see choose_pipeline)
    differs only in the image block. `kwargs` go to DataBlock.dataloaders (num_workers, ...)."""
    pipeline, resize = choose_pipeline(pipeline, item_tfms)
    fast_images = TransformBlock(type_tfms=ImageBytes.create, batch_tfms=[resize, IntToFloatTensor],
                                 dl_type=BytesDL) if pipeline == 'fast' else None
    dblock = DataBlock(blocks=(fast_images or ImageBlock, CategoryBlock), get_items=get_items, get_y=get_y,
                       splitter=RandomSplitter(valid_pct, seed=seed),
                       item_tfms=None if fast_images else item_tfms, batch_tfms=batch_tfms)
    return dblock.dataloaders(folder, path=folder, bs=bs, **kwargs)
