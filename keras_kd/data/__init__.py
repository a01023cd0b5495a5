"""Datasets as numpy arrays: the embedded digits, generated MNIST-1D, IDX files and tfds."""

from keras_kd.data.loaders import NAMES, is_valid_name, load, load_mnist1d

__all__ = ["NAMES", "is_valid_name", "load", "load_mnist1d"]
