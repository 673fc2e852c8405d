"""Run fastai/timm image-classification experiments as Kaggle kernels and bring the results back."""

__version__ = "0.1.0"
