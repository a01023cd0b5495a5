"""Tests of keras_kd.data.load for every source, with local or generated data only."""

import gzip
import struct

import numpy as np
import pytest

from keras_kd import data


def test_digits_is_the_fixed_embedded_split():
    (x, y), (xt, yt) = data.load("digits")
    assert x.shape == (1437, 8, 8, 1) and xt.shape == (360, 8, 8, 1)
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert set(np.unique(y)) == set(range(10))
    (x2, _), _ = data.load("digits")
    np.testing.assert_array_equal(x, x2)


def test_mnist1d_is_generated_with_the_default_split():
    (x, y), (xt, yt) = data.load("mnist1d")
    assert x.shape == (4000, 40, 1) and xt.shape == (1000, 40, 1)
    assert y.shape == (4000,) and set(np.unique(y)) == set(range(10))


def test_mnist1d_seed_gives_new_examples():
    (x, _), _ = data.load_mnist1d(seed=1, num_samples=200)
    (x_default, _), _ = data.load_mnist1d(num_samples=200)
    assert x.shape == (160, 40, 1) and not np.allclose(x, x_default)


def _write_idx(path, array, gz):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape
    )
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _write_idx_dataset(directory, gz=True):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (6, 4, 5)), rng.integers(0, 10, 6)
    suffix = ".gz" if gz else ""
    for stem, array in [
        ("train-images-idx3-ubyte", images),
        ("train-labels-idx1-ubyte", labels),
        ("t10k-images-idx3-ubyte", images[:2]),
        ("t10k-labels-idx1-ubyte", labels[:2]),
    ]:
        _write_idx(directory / (stem + suffix), array, gz)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reads_mnist_format_files(tmp_path, gz):
    images, labels = _write_idx_dataset(tmp_path, gz)
    (x, y), (xt, yt) = data.load(f"idx:{tmp_path}")
    assert x.shape == (6, 4, 5, 1) and xt.shape == (2, 4, 5, 1)
    np.testing.assert_allclose(x[..., 0], images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)


def test_idx_missing_files_are_named(tmp_path):
    with pytest.raises(data.DatasetNotFoundError, match="missing train-images-idx3-ubyte"):
        data.load(f"idx:{tmp_path}")


def test_fashion_mnist_reads_the_directory_the_environment_names(tmp_path, monkeypatch):
    images, labels = _write_idx_dataset(tmp_path)
    monkeypatch.setenv("KERAS_KD_FASHION_MNIST", str(tmp_path))
    assert data.is_valid_name("fashion_mnist") and "fashion_mnist" in data.NAMES
    assert data.fashion_mnist_dir() == str(tmp_path)
    (x, y), (xt, yt) = data.load("fashion_mnist")
    assert x.shape == (6, 4, 5, 1) and xt.shape == (2, 4, 5, 1)
    np.testing.assert_array_equal(y, labels)


def test_fashion_mnist_defaults_to_debians_directory(monkeypatch):
    monkeypatch.delenv("KERAS_KD_FASHION_MNIST", raising=False)
    assert data.fashion_mnist_dir() == "/usr/share/datasets/fashion-mnist"


@pytest.mark.parametrize("env_set", [True, False])
def test_missing_fashion_mnist_names_directory_variable_and_package(tmp_path, monkeypatch, env_set):
    missing = tmp_path / "no_such_dir"
    if env_set:
        monkeypatch.setenv("KERAS_KD_FASHION_MNIST", str(missing))
    else:  # the default directory, hidden by pointing the default at a missing one
        monkeypatch.delenv("KERAS_KD_FASHION_MNIST", raising=False)
        monkeypatch.setattr(data.loaders, "FASHION_MNIST_DEFAULT_DIR", str(missing))
    with pytest.raises(data.DatasetNotFoundError) as raised:
        data.load("fashion_mnist")
    message = str(raised.value)
    assert isinstance(raised.value, FileNotFoundError) and "\n" not in message
    assert repr(str(missing)) in message and "KERAS_KD_FASHION_MNIST" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert message.endswith("received: name='fashion_mnist'")


def test_idx_rejects_a_file_that_is_not_idx(tmp_path):
    for stem in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]:
        (tmp_path / stem).write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match="is not an IDX file"):
        data.load(f"idx:{tmp_path}")


def test_tfds_path_with_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12):
        (x, y), (xt, yt) = data.load("tfds:mnist")
    assert x.shape == (12, 28, 28, 1) and x.dtype == np.float32 and x.max() <= 1.0
    assert y.dtype == np.int64 and xt.shape[1:] == (28, 28, 1)


@pytest.mark.parametrize("name", ["cifar", "idx:", "tfds:", "", 3])
def test_unknown_names_list_what_is_available(name):
    with pytest.raises(ValueError, match="digits"):
        data.load(name)


def test_data_dir_only_for_tfds():
    with pytest.raises(ValueError, match="data_dir is only used by tfds"):
        data.load("digits", data_dir="/tmp")
