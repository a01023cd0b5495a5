"""Flags that several example scripts share, declared once.

absl keeps one global flag registry, so two scripts that each declared ``--dataset`` could not be
imported into one process (the test suite imports every script's ``run``). Each script uses these
holders and sets its own defaults with ``set_defaults`` right after importing this module.

Example:
    >>> from examples import common_flags
    >>> common_flags.set_defaults(dataset="idx:/usr/share/datasets/fashion-mnist", epochs=5)
    >>> common_flags.DATASET.value
"""

import math
import os
import sys

from absl import app, flags

import keras_kd as kd

DATASET = flags.DEFINE_string(
    "dataset", "digits", "Dataset for keras_kd.data.load: digits, mnist1d, idx:<dir>, tfds:<name>."
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
MODEL = flags.DEFINE_string("model", None, "A saved Keras model (.keras or .h5) to start from.")
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
    "Keras verbosity: 0 silent, 1 progress bar, 2 a line per epoch.",
)

flags.register_validator(
    "dataset",
    lambda name: (
        kd.data.is_valid_name(name)
        and (not name.startswith("idx:") or os.path.isdir(name[len("idx:") :]))
    ),
    message=f"--dataset must be one of {list(kd.data.NAMES)}, idx:<dir> an existing directory",
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
    lambda path: path is None or os.path.isfile(path),
    message="--model must be an existing file",
)


def set_defaults(**defaults):
    """Sets this script's defaults of shared flags, e.g. ``set_defaults(epochs=40)``.

    Args:
        **defaults: Flag name to default value; every name must be a flag of this module.

    Raises:
        ValueError: If a name is not a shared flag.
    """
    known = {holder.name for holder in _HOLDERS}
    for name, value in defaults.items():
        if name not in known:
            raise ValueError(f"{name!r} is not a shared flag; shared flags are {sorted(known)}")
        flags.FLAGS.set_default(name, value)


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
    RUNS,
    OUTPUT_DIR,
    VERBOSE,
)


def run_app(main):
    """Runs ``main`` like ``absl.app.run``, but bad command lines exit 2 with one line, no traceback.

    A flag that fails its type, bounds, enum or validator, or a ``app.UsageError`` raised by
    ``main`` (extra arguments, flags that do not fit together), prints ``<script>: <message>`` to
    stderr and exits with status 2, the convention of Unix tools for usage errors.

    Args:
        main: The script's ``main(argv)``.

    Example:
        >>> if __name__ == "__main__":
        ...     common_flags.run_app(main)
    """

    def guarded_main(argv):
        try:
            return main(argv)
        except app.UsageError as error:
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
