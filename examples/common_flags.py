"""Flags that several example scripts share, declared once, and the way every script runs.

absl keeps one global flag registry, so two scripts that each declared ``--dataset`` could not be
imported into one process (the test suite imports every script's ``run``). Each script uses these
holders and sets its own defaults with ``set_defaults`` right after importing this module. Nothing
here reads a file, a directory or the environment when it is imported: paths are checked when the
command line is parsed, datasets when they are loaded.

``--verbose`` (``apply_verbosity``): 0 (the default) quiet, TensorFlow's C++ logs and absl INFO
lines hidden, Keras silent; 1 the same with Keras progress bars inside long stages; 2 full logs,
TensorFlow's C++ logs and absl INFO lines on, Keras one line per epoch.

Example:
    >>> from examples import common_flags
    >>> common_flags.set_defaults(dataset="fashion_mnist", epochs=5)
    >>> common_flags.DATASET.value
    'fashion_mnist'
"""

import math
import os
import sys

from absl import app, flags, logging

import keras_kd as kd

DATASET = flags.DEFINE_string(
    "dataset",
    "digits",
    "Dataset for keras_kd.data.load: digits, mnist1d, fashion_mnist (the IDX files in "
    "$KERAS_KD_FASHION_MNIST, default /usr/share/datasets/fashion-mnist), idx:<dir>, tfds:<name>.",
)
TRAIN_SIZE = flags.DEFINE_integer(
    "train_size", 0, "Use only this many training examples (0: all).", lower_bound=0
)
EPOCHS = flags.DEFINE_integer(
    "epochs", 10, "Student epochs (equal for every compared student).", lower_bound=1
)
TEACHER_EPOCHS = flags.DEFINE_integer("teacher_epochs", 10, "Teacher epochs.", lower_bound=1)
BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Batch size.", lower_bound=1)
LEARNING_RATE = flags.DEFINE_float("learning_rate", 3e-3, "Adam learning rate.", lower_bound=0.0)
TEMPERATURE = flags.DEFINE_float(
    "temperature", 4.0, "Distillation temperature T.", lower_bound=1e-6
)
ALPHA = flags.DEFINE_float(
    "alpha", 0.1, "Weight of the hard-label loss.", lower_bound=0.0, upper_bound=1.0
)
SEED = flags.DEFINE_integer("seed", 0, "Random seed.", lower_bound=0)
SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per row (mean and std over them).", lower_bound=1)
TEACHER_WIDTH = flags.DEFINE_integer(
    "teacher_width", 64, "Filters of the teacher's first block.", lower_bound=1
)
STUDENT_WIDTH = flags.DEFINE_integer(
    "student_width", 16, "Filters of the student's first block.", lower_bound=1
)
MODEL = flags.DEFINE_string(
    "model",
    None,
    "A saved model to start from, loaded by keras_kd.load_model: a .keras or .h5 file (tf_keras or "
    "Keras 3) or a tf_keras SavedModel directory.",
)
UNSAFE_DESERIALIZATION = flags.DEFINE_boolean(
    "unsafe_deserialization",
    False,
    "Let --model load a file that runs Python code when loaded (a Lambda layer). Trusted files only.",
)
RUNS = flags.DEFINE_integer(
    "runs", 50, "Timed interpreter invocations per thread count.", lower_bound=1
)
OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", "keras_kd_runs", "Where models, reports and results are written."
)
VERBOSE = flags.DEFINE_enum(
    "verbose",
    "0",
    ["0", "1", "2"],
    "0 quiet; 1 Keras progress bars in long stages; 2 full logs (TensorFlow C++, absl INFO).",
)

# The form of the name only: the files are looked for when the dataset is loaded (a missing
# dataset then exits 2 with one line, see run_app), never when a script is imported or parsed.
flags.register_validator(
    "dataset",
    kd.data.is_valid_name,
    message=f"--dataset must be one of {list(kd.data.NAMES)}",
)
flags.register_validator(
    "learning_rate", lambda rate: rate > 0, message="--learning_rate must be > 0"
)
flags.register_validator(
    "output_dir",
    lambda path: bool(path) and not (os.path.exists(path) and not os.path.isdir(path)),
    message="--output_dir must be a directory path (it may not exist yet), not a file or empty",
)
flags.register_validator(
    "model",
    lambda path: path is None or os.path.exists(path),
    message="--model must be an existing file or SavedModel directory",
)


def set_defaults(**defaults):
    """Sets this script's defaults of shared flags, e.g. ``set_defaults(epochs=40)``.

    Called when a script is imported, so it runs no validator (absl's ``set_default`` would, and
    one that looks at a path would read the machine at import); the defaults are validated with
    the rest of the command line when it is parsed. Types and bounds are still checked here.

    Args:
        **defaults: Flag name to default value; every name must be a flag of this module.

    Raises:
        ValueError: If a name is not a shared flag, naming it and the shared flags.
        flags.IllegalFlagValueError: If a value has the wrong type or is out of the flag's bounds.

    Example:
        >>> set_defaults(dataset="fashion_mnist", epochs=40)
    """
    known = {holder.name for holder in _HOLDERS}
    for name, value in defaults.items():
        if name not in known:
            raise ValueError(
                f"name must be a shared flag, one of {sorted(known)}, received: name={name!r}"
            )
        flags.FLAGS[name]._set_default(value)  # absl's set_default minus its validators


def keras_verbosity():
    """Returns the ``verbose`` argument for Keras ``fit`` that ``--verbose`` asks for.

    Returns:
        0 (silent) for ``--verbose=0``, 1 (progress bars) for 1, 2 (one line per epoch) for 2.

    Example:
        >>> model.fit(x, y, epochs=5, verbose=common_flags.keras_verbosity())
    """
    return int(VERBOSE.value)


def apply_verbosity(verbose=None):
    """Applies ``--verbose`` to the Python loggers; ``run_app`` calls it once flags are parsed.

    TensorFlow's C++ logs are set earlier, before TensorFlow is imported, by importing the
    ``examples`` package (``examples/__init__.py``), which reads ``--verbose`` from the command
    line. This sets absl's verbosity (INFO at 2, else WARNING; an explicit ``--verbosity`` wins)
    and TensorFlow's Python logger (INFO at 2, else ERROR).

    Args:
        verbose: 0, 1 or 2; ``None`` (the default) reads ``--verbose``.

    Returns:
        The ``verbose`` argument for Keras ``fit`` (see ``keras_verbosity``).

    Raises:
        ValueError: If ``verbose`` is not 0, 1 or 2.

    Example:
        >>> fit_verbose = common_flags.apply_verbosity(0)
    """
    level = int(VERBOSE.value) if verbose is None else verbose
    if level not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, received: verbose={verbose!r}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.INFO if level == 2 else logging.WARNING)
    from keras_kd._compat import tf

    tf.get_logger().setLevel("INFO" if level == 2 else "ERROR")
    return level


_HOLDERS = (
    DATASET,
    TRAIN_SIZE,
    EPOCHS,
    TEACHER_EPOCHS,
    BATCH_SIZE,
    LEARNING_RATE,
    TEMPERATURE,
    ALPHA,
    SEED,
    SEEDS,
    TEACHER_WIDTH,
    STUDENT_WIDTH,
    MODEL,
    UNSAFE_DESERIALIZATION,
    RUNS,
    OUTPUT_DIR,
    VERBOSE,
)


def run_app(main):
    """Runs ``main`` like ``absl.app.run``, but bad command lines exit 2 with one line, no traceback.

    A flag that fails its type, bounds, enum or validator, an ``app.UsageError`` raised by
    ``main`` (extra arguments, flags that do not fit together), or a dataset whose files are
    missing (``keras_kd.data.DatasetNotFoundError``: the message names the directory looked in,
    ``KERAS_KD_FASHION_MNIST`` and the package to install) prints ``<script>: <message>`` to stderr
    and exits with status 2, the convention of Unix tools for usage errors. ``--verbose`` is
    applied (``apply_verbosity``) before ``main`` runs.

    Args:
        main: The script's ``main(argv)``.

    Example:
        >>> if __name__ == "__main__":
        ...     common_flags.run_app(main)
    """

    def guarded_main(argv):
        apply_verbosity()
        try:
            return main(argv)
        except (app.UsageError, kd.data.DatasetNotFoundError) as error:
            _exit_usage(argv[0], error)

    app.run(guarded_main, flags_parser=_parse_flags_or_exit)


def _parse_flags_or_exit(argv):
    try:
        remaining = flags.FLAGS(argv)
        check_finite_floats()
        return remaining
    except flags.Error as error:
        _exit_usage(argv[0], error)


def check_finite_floats(flag_values=flags.FLAGS):
    """Raises ``flags.IllegalFlagValueError`` for a float flag set to nan or inf.

    absl's bounds let nan through (every comparison with nan is false), so every float flag of
    every script is checked here once the command line is parsed.

    Args:
        flag_values: The parsed ``flags.FlagValues``.

    Raises:
        flags.IllegalFlagValueError: Naming the first float flag whose value is not finite.
    """
    for name in sorted(flag_values):
        flag = flag_values[name]
        if isinstance(flag.parser, flags.FloatParser) and flag.value is not None:
            if not math.isfinite(flag.value):
                raise flags.IllegalFlagValueError(
                    f"flag --{name}={flag.value}: --{name} must be a finite number"
                )


def _exit_usage(program, error):
    message = " ".join(str(error).split())
    sys.stderr.write(f"{os.path.basename(program)}: {message}\n")
    sys.exit(2)
