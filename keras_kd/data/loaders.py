"""Dataset loaders that return numpy arrays: ``((x_train, y_train), (x_test, y_test))``.

Images come as float32 in [0, 1] with a channel axis ``(N, H, W, C)``, 1-D signals as ``(N, L, 1)``,
labels as int64 class ids. Nothing here reads the file system or the environment until ``load`` is
called.
"""

import gzip
import os

import numpy as np

_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
NAMES = ("digits", "mnist1d", "fashion_mnist", "idx:<dir>", "tfds:<name>")
FASHION_MNIST_ENV = "KERAS_KD_FASHION_MNIST"
FASHION_MNIST_DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where ``load`` looked; the message says where and how to get them.

    A ``FileNotFoundError``, so existing handlers keep working; the example scripts catch this
    class alone and turn it into one line on stderr and exit status 2.

    Example:
        >>> try:
        ...     load("idx:/no/such/dir")
        ... except DatasetNotFoundError as error:
        ...     print(type(error).__name__)
        DatasetNotFoundError
    """


def load(name, data_dir=None):
    """Loads a dataset by name into numpy arrays, with no download except for ``tfds:``.

    Args:
        name: ``"digits"`` (scikit-learn's bundled 8x8 digits, 1437 train / 360 test, fixed stratified
            split; the embedded default), ``"mnist1d"`` (generated locally by the ``mnist1d`` package,
            its default 4000 / 1000 split; Greydanus 2020, "Scaling down Deep Learning"),
            ``"fashion_mnist"`` (Fashion-MNIST's IDX files, 60000 / 10000, from the directory named
            by the environment variable ``KERAS_KD_FASHION_MNIST``, read when ``load`` is called;
            default ``/usr/share/datasets/fashion-mnist``, where Debian's
            ``apt-get install dataset-fashion-mnist`` puts them), ``"idx:<dir>"`` (MNIST-format IDX
            files in ``<dir>``, gzipped or not), or ``"tfds:<name>"`` (a tensorflow-datasets dataset
            with ``train`` and ``test`` splits).
        data_dir: For ``tfds:`` only, where tensorflow-datasets keeps its data.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: float32 inputs and int64 labels.

    Raises:
        ValueError: If ``name`` is unknown or ``data_dir`` is given for a dataset that does not use it.
        DatasetNotFoundError: A ``FileNotFoundError``: if IDX files are missing (``fashion_mnist``
            or ``idx:``), naming the directory and files looked for and how to install them.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load("digits")
        >>> x_train.shape
        (1437, 8, 8, 1)
    """
    if data_dir is not None and not (isinstance(name, str) and name.startswith("tfds:")):
        raise ValueError(
            f"data_dir is only used by tfds: datasets, received: data_dir={data_dir!r}, name={name!r}"
        )
    if not is_valid_name(name):
        raise ValueError(
            f"unknown dataset: name must be one of {list(NAMES)}, received: name={name!r}"
        )
    if name == "digits":
        return _load_digits()
    if name == "mnist1d":
        return load_mnist1d()
    if name == "fashion_mnist":
        return _load_fashion_mnist()
    if name.startswith("idx:"):
        return _load_idx(name[len("idx:") :])
    return _load_tfds(name[len("tfds:") :], data_dir)


def is_valid_name(name):
    """Returns whether ``name`` has a form ``load`` accepts (files are checked only when loading).

    Args:
        name: A dataset name such as ``"digits"`` or ``"idx:/path"``.

    Returns:
        ``True`` for ``digits``, ``mnist1d``, ``fashion_mnist``, ``idx:<dir>`` and ``tfds:<name>``,
        else ``False``.

    Example:
        >>> is_valid_name("tfds:mnist")
        True
    """
    if not isinstance(name, str):
        return False
    return name in ("digits", "mnist1d", "fashion_mnist") or any(
        name.startswith(prefix) and len(name) > len(prefix) for prefix in ("idx:", "tfds:")
    )


def _load_digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=0, stratify=y
    )
    return (x_train, y_train), (x_test, y_test)


def load_mnist1d(seed=42, num_samples=5000, train_split=0.8):
    """Generates MNIST-1D locally with the ``mnist1d`` package (no download).

    Paper: Greydanus (2020), "Scaling down Deep Learning". The defaults give the paper's 4000 / 1000
    split; another ``seed`` gives fresh examples from the same distribution (a transfer set).

    Args:
        seed: Seed of the generator.
        num_samples: Number of examples to generate (train + test).
        train_split: Fraction of examples in the training split, in (0, 1).

    Returns:
        ``((x_train, y_train), (x_test, y_test))`` with inputs of shape ``(N, 40, 1)``.

    Raises:
        ValueError: If ``num_samples`` < 2 or ``train_split`` is outside (0, 1).

    Example:
        >>> (x_train, y_train), _ = load_mnist1d()
        >>> x_train.shape
        (4000, 40, 1)
    """
    if not isinstance(num_samples, int) or num_samples < 2:
        raise ValueError(
            f"num_samples must be an integer >= 2, received: num_samples={num_samples!r}"
        )
    if not 0 < train_split < 1:
        raise ValueError(f"train_split must be in (0, 1), received: train_split={train_split!r}")
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed, args.num_samples, args.train_split = seed, num_samples, train_split
    data = make_dataset(args)

    def with_channel(signals):
        return np.asarray(signals, np.float32)[..., np.newaxis]

    return (
        (with_channel(data["x"]), np.asarray(data["y"], np.int64)),
        (with_channel(data["x_test"]), np.asarray(data["y_test"], np.int64)),
    )


def fashion_mnist_dir():
    """Returns the directory ``load("fashion_mnist")`` reads, from ``KERAS_KD_FASHION_MNIST``.

    Reads the environment each call (never at import), so a test or a script may set it late.

    Returns:
        The value of ``KERAS_KD_FASHION_MNIST``, or ``/usr/share/datasets/fashion-mnist`` (Debian's
        ``dataset-fashion-mnist`` package) when it is unset or empty. The directory may not exist.

    Example:
        >>> fashion_mnist_dir()  # with KERAS_KD_FASHION_MNIST unset
        '/usr/share/datasets/fashion-mnist'
    """
    return os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DEFAULT_DIR


def _load_fashion_mnist():
    directory = fashion_mnist_dir()
    missing = _missing_idx_file(directory)
    if missing:
        source = (
            f"set by {FASHION_MNIST_ENV}"
            if os.environ.get(FASHION_MNIST_ENV)
            else f"the default; set {FASHION_MNIST_ENV} to use another"
        )
        raise DatasetNotFoundError(
            f"Fashion-MNIST not found: {directory!r} ({source}) has no {missing}[.gz]; install "
            f"it with `apt-get install {FASHION_MNIST_PACKAGE}` or point {FASHION_MNIST_ENV} at a "
            f"directory of its IDX files, received: name='fashion_mnist'"
        )
    return _load_idx(directory)


def _idx_path(directory, stem):
    candidates = [os.path.join(directory, stem + suffix) for suffix in (".gz", "")]
    return next((c for c in candidates if os.path.isfile(c)), None)


def _missing_idx_file(directory):
    return next((s for s in _IDX_FILES.values() if _idx_path(directory, s) is None), None)


def _load_idx(directory):
    missing = _missing_idx_file(directory)
    if missing:
        raise DatasetNotFoundError(
            f"IDX dataset in {directory!r} is missing {missing}[.gz]; it needs the files "
            f"{sorted(_IDX_FILES.values())} (e.g. apt-get install {FASHION_MNIST_PACKAGE} gives "
            f"{FASHION_MNIST_DEFAULT_DIR}), received: name={'idx:' + directory!r}"
        )
    arrays = {key: _read_idx(_idx_path(directory, stem)) for key, stem in _IDX_FILES.items()}
    x_train, x_test = (_images_to_float(arrays[k]) for k in ("x_train", "x_test"))
    return (x_train, arrays["y_train"].astype(np.int64)), (
        x_test,
        arrays["y_test"].astype(np.int64),
    )


def _read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path!r} is not an IDX file (bad magic number {raw[:4]!r})")
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    data = np.frombuffer(raw, dtype=np.dtype(_IDX_DTYPES[raw[2]]), offset=4 + 4 * dims)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path!r} holds {data.size} values but its header says shape {shape}")
    return data.reshape(shape)


def _images_to_float(images):
    images = np.asarray(images)
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    images = images.astype(np.float32) / scale
    return images[..., np.newaxis] if images.ndim == 3 else images


def _load_tfds(dataset, data_dir):
    import tensorflow_datasets as tfds

    # Batches concatenated in numpy: batch_size=-1 fails on datasets of unknown cardinality.
    splits = tfds.load(dataset, split=["train", "test"], as_supervised=True, data_dir=data_dir)
    arrays = []
    for split in splits:
        batches = list(tfds.as_numpy(split.batch(4096)))
        x = np.concatenate([b[0] for b in batches])
        y = np.concatenate([b[1] for b in batches])
        arrays.append((_images_to_float(x), y.astype(np.int64)))
    return tuple(arrays)
