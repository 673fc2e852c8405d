"""A notebook's own `vision_learner(dls, arch)` or `timm.create_model(arch, pretrained=True)` gets the weights the
toolkit's recipe would: the file attached to the run (a dataset, for kernels without internet), else timm's
download; and where the run trains from scratch (no weights on this machine, or --scratch), the model starts
from random weights, with one printed note. fastai's vision_learner builds timm models through
`timm.create_model`, so replacing that one function reaches both.

Pasted into a notebook's injected cell (see render.runtime_source): imports only what Kaggle's image has.
"""

import timm

LOADED = {}  # arch -> where its pretrained weights came from: 'file', 'hub' or 'none' (metrics.json's weights)


def use_pretrained(arch, weights_file=None, pretrained=True):
    "Make `timm.create_model` load `arch`'s weights from `weights_file`, timm's hub, or nothing, as the run says."
    create = getattr(timm.create_model, 'toolkit_original', timm.create_model)

    def create_model(model_name, pretrained_asked=False, *args, **kwargs):
        pretrained_asked = kwargs.pop('pretrained', pretrained_asked)
        if pretrained_asked and _same(model_name, arch) and not kwargs.get('pretrained_cfg_overlay'):
            if weights_file is not None:
                kwargs['pretrained_cfg_overlay'] = dict(file=str(weights_file))
            elif not pretrained:
                print(f'{arch}: this run trains from scratch (no pretrained weights attached), '
                      f'so create_model({model_name!r}, pretrained=True) starts from random weights')
                pretrained_asked = False
        if _same(model_name, arch):
            LOADED[arch] = ('file' if kwargs.get('pretrained_cfg_overlay') else 'hub') if pretrained_asked else 'none'
        return create(model_name, pretrained_asked, *args, **kwargs)

    create_model.toolkit_original = create
    timm.create_model = create_model


def _same(name, arch):
    "Whether a model name is the run's arch (a pretrained tag such as .fb_in22k left aside)."
    return str(name).split('.', 1)[0] == str(arch).split('.', 1)[0]
