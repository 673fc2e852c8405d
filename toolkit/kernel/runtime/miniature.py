"""A check's miniature competition has a few images per class: a notebook keeping fastai's default batch size
(64) would make loaders with no batch at all ("This DataLoader does not contain any batches"). In a check
every fastai DataLoader takes at most `limit` items a batch, whatever size the notebook asks for.

Pasted into check kernels only (runs/check.py renders them): imports only what Kaggle's image has.
"""


def fit_batches(limit):
    "Cap every fastai DataLoader's batch size at `limit` (only a check's kernels call this)."
    from fastai.data.load import DataLoader

    init = getattr(DataLoader.__init__, 'toolkit_original', DataLoader.__init__)

    def capped(self, dataset=None, bs=None, *args, **kwargs):
        if kwargs.get('batch_size') is not None:
            kwargs['batch_size'] = min(kwargs['batch_size'], limit)
        init(self, dataset, None if bs is None else min(bs, limit), *args, **kwargs)

    capped.toolkit_original = init
    DataLoader.__init__ = capped
