"""The predicting ensemble's members: each one's model rebuilt from the model.pth and model.json its training
kernel wrote (weights only: no download, no code unpickled), then TTA over the test images present when the
kernel runs (in a code competition's rerun, the hidden test set).

Pasted into predicting ensemble kernels (see render.runtime_source): imports only what Kaggle's image has.
"""

import json
from pathlib import Path

import torch
from fastai.vision.all import (CategoryBlock, CrossEntropyLossFlat, DataBlock, ImageBlock, IndexSplitter, L, Learner,
                               Normalize, ProgressCallback, create_timm_model, default_split)

from ..contract import MODEL_FILE, MODEL_INFO_FILE, check_model_info


def member_info(folder):
    "A member's model.json, checked against the output contract."
    path = Path(folder) / MODEL_INFO_FILE
    return check_model_info(json.loads(path.read_text()), str(path))


def rebuild_learner(folder, info, files, item_tfms, batch_tfms, bs=64):
    """A learner with the member's trained weights (its output columns: info's vocab, in training order), and its
    transforms and input normalisation as its training kernel used them (fastai's create_timm_model, as
    vision_learner made it)."""
    norm = [Normalize.from_stats(*info['normalize'])] if info['normalize'] else []
    vocab = info['vocab']
    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock(vocab=vocab)), get_y=lambda _: vocab[0],
                       splitter=IndexSplitter([]), item_tfms=item_tfms, batch_tfms=[*L(batch_tfms), *norm])
    dls = dblock.dataloaders(files[:1], bs=bs)  # one item: the loaders only carry the transforms
    model, _ = create_timm_model(info['arch'], len(vocab), default_split, pretrained=False)
    model.load_state_dict(torch.load(Path(folder) / MODEL_FILE, map_location='cpu', weights_only=True))
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat())
    learn.remove_cb(ProgressCallback)  # HTML progress bars are noise in a kernel log
    return learn.to_fp16() if torch.cuda.is_available() else learn


def predict_member(folder, files, test_root, item_tfms, batch_tfms, bs=64):
    """TTA probabilities of the member whose outputs are in `folder` on `files`, as a tta.pkl holds them: probs,
    files (relative to `test_root`) and vocab."""
    info = member_info(folder)
    learn = rebuild_learner(folder, info, files, item_tfms, batch_tfms, bs)
    probs, _ = learn.tta(dl=learn.dls.test_dl(files, bs=bs))
    return dict(probs=probs.float().cpu(), files=[Path(f).relative_to(test_root).as_posix() for f in files],
                vocab=info['vocab'])
