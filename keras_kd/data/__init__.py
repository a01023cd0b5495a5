"""Data: the embedded digits, generated MNIST-1D, IDX files and tfds; transfer sets and batch mixing."""

from keras_kd.data.loaders import NAMES, is_valid_name, load, load_mnist1d
from keras_kd.data.mixing import CutMix, MixUp, mix
from keras_kd.data.transfer import UNLABELED, label_with_teacher, with_unlabeled

__all__ = [
    "NAMES",
    "UNLABELED",
    "CutMix",
    "MixUp",
    "is_valid_name",
    "label_with_teacher",
    "load",
    "load_mnist1d",
    "mix",
    "with_unlabeled",
]
