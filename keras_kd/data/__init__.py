"""Data: embedded digits, generated MNIST-1D, Fashion-MNIST and IDX files, tfds; transfer sets, mixing,
replayable views."""

from keras_kd.data.loaders import (
    NAMES,
    DatasetNotFoundError,
    fashion_mnist_dir,
    is_valid_name,
    load,
    load_mnist1d,
)
from keras_kd.data.mixing import CutMix, MixUp, mix
from keras_kd.data.transfer import UNLABELED, label_with_teacher, with_unlabeled
from keras_kd.data.views import ViewPlan, view_keys, view_plan

__all__ = [
    "NAMES",
    "UNLABELED",
    "ViewPlan",
    "CutMix",
    "DatasetNotFoundError",
    "MixUp",
    "fashion_mnist_dir",
    "is_valid_name",
    "label_with_teacher",
    "load",
    "load_mnist1d",
    "mix",
    "view_keys",
    "view_plan",
    "with_unlabeled",
]
