"""What a training kernel prints while it trains: a plain line per epoch (kernel logs are text), the contract's
machine-readable progress line per epoch and at each phase change, and the per-epoch numbers for metrics.json.

Pasted into training kernels (see render.runtime_source): imports only what Kaggle's image has.
"""

import time

from fastai.vision.all import Callback, Recorder

from ..contract import progress_line, progress_record


def progress(phase, **numbers):
    "Print the progress line of `phase` (see contract.progress_line)."
    print(progress_line(progress_record(phase, **numbers)), flush=True)


class EpochLog(Callback):
    """Print one plain line and one progress line per epoch, and keep per-epoch rows (metrics.json's `epochs`).
    A fit with frozen parameter groups (a fine-tune's first) is the frozen phase. Phases start at a fit's first
    training batch loop, not at before_fit: learn.tta calls before_fit and after_fit too."""
    order = Recorder.order + 1
    def __init__(self): self.rows, self.first_start, self.last_end = [], None, None
    def before_epoch(self): self.start = time.perf_counter()
    def before_train(self):
        if self.epoch != 0: return
        self.frozen_fit = getattr(self.learn.opt, 'frozen_idx', 0) > 0
        if self.first_start is None: self.first_start = self.start
        progress('frozen' if self.frozen_fit else 'training', epochs=self.n_epoch)
    def after_epoch(self):
        train_loss, valid_loss, err = [float(v) for v in self.recorder.values[-1][:3]]
        phase = 'frozen' if self.frozen_fit else 'train'
        self.last_end = time.perf_counter()
        row = dict(phase=phase, epoch=self.epoch, train_loss=train_loss, valid_loss=valid_loss,
                   error_rate=err, seconds=self.last_end - self.start)
        self.rows.append(row)
        print(f"{phase:>6} epoch {self.epoch:>2}  train_loss {train_loss:.4f}  valid_loss {valid_loss:.4f}  "
              f"error_rate {err:.4f}  {row['seconds']:.0f}s", flush=True)
        progress('frozen' if self.frozen_fit else 'training', epoch=self.epoch, epochs=self.n_epoch,
                 train_loss=train_loss, valid_loss=valid_loss, error_rate=err, seconds=row['seconds'])
    @property
    def train_seconds(self):
        "Wall time from the first epoch's start to the last one's end, both fits of a fine-tune included."
        return self.last_end - self.first_start if self.rows else 0.0


def epoch_log(learn):
    "The learner's EpochLog, which metrics.json's epochs come from."
    logs = [cb for cb in learn.cbs if isinstance(cb, EpochLog)]
    if not logs:
        raise ValueError("the learner has no EpochLog: add one before fitting (learn.add_cb(EpochLog())), "
                         "metrics.json's epochs come from it")
    return logs[0]
