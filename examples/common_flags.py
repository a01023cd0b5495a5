"""The flags example scripts share, the way a script declares them, and the way every script runs.

absl keeps one global flag registry, so two scripts that each declared ``--dataset`` could not be
imported into one process (the test suite imports every script's ``run``). So each script declares
its flags in a ``flags.FlagValues`` of its own: the shared ones named by its ``run``'s parameters
(``with_settings``), with their defaults (``define``), its own ones with ``flag_values=FLAGS``.
``run_app`` adds them to absl's registry only in the process that runs the script. Nothing here
reads a file, a directory or the environment when it is imported: paths are checked when the
command line is parsed, datasets when they are loaded.

``--verbose`` (every script has it; ``apply_verbosity``): 0 (the default) quiet, TensorFlow's C++
logs and absl INFO lines hidden, Keras silent; 1 the same with Keras progress bars inside long
stages; 2 full logs, TensorFlow's C++ logs and absl INFO lines on, Keras one line per epoch.

Example:
    >>> from absl import flags
    >>> from examples import common_flags
    >>> FLAGS = flags.FlagValues()
    >>> def run(dataset="fashion_mnist", epochs=5, verbose=0): ...
    >>> _ = common_flags.define(FLAGS, run)  # --dataset, --epochs, --verbose: run's defaults
    >>> FLAGS["epochs"].default
    5
    >>> if __name__ == "__main__":
    ...     common_flags.run_app(main, FLAGS)  # main calls run(**common_flags.arguments(run, FLAGS))
"""

import functools
import inspect
import json
import math
import os
import sys
import types

from absl import app, flags, logging

import keras_kd as kd


def _is_directory_path(path):
    return bool(path) and not (os.path.exists(path) and not os.path.isdir(path))


_DATASET_HELP = (
    "Dataset for keras_kd.data.load: digits, mnist1d, fashion_mnist (the IDX files in "
    "$KERAS_KD_FASHION_MNIST, default /usr/share/datasets/fashion-mnist), idx:<dir>, tfds:<name>."
)
_MODEL_HELP = (
    "A saved model to start from, loaded by keras_kd.load_model: a .keras or .h5 file (tf_keras or "
    "Keras 3) or a tf_keras SavedModel directory."
)
_UNSAFE_HELP = "Let --model load a file that runs Python code (a Lambda layer). Trusted files only."
_VERBOSE_HELP = (
    "0 quiet; 1 Keras progress bars in long stages; 2 full logs (TensorFlow, absl INFO)."
)
_INT, _FLOAT, _STR = flags.DEFINE_integer, flags.DEFINE_float, flags.DEFINE_string
# name -> (DEFINE function, default, help, bounds or enum values). The default is the one a script
# gets unless its ``run`` (``with_settings``) or ``define`` gives another.
_SHARED = {
    "dataset": (_STR, "digits", _DATASET_HELP, {}),
    "train_size": (_INT, 0, "Use only this many training examples (0: all).", {"lower_bound": 0}),
    "epochs": (_INT, 10, "Student epochs (equal for every compared student).", {"lower_bound": 1}),
    "teacher_epochs": (_INT, 10, "Teacher epochs.", {"lower_bound": 1}),
    "batch_size": (_INT, 64, "Batch size.", {"lower_bound": 1}),
    "learning_rate": (_FLOAT, 3e-3, "Adam learning rate.", {"lower_bound": 0.0}),
    "temperature": (_FLOAT, 4.0, "Distillation temperature T.", {"lower_bound": 1e-6}),
    "alpha": (
        _FLOAT,
        0.1,
        "Weight of the hard-label loss.",
        {"lower_bound": 0.0, "upper_bound": 1.0},
    ),
    "seed": (_INT, 0, "Random seed.", {"lower_bound": 0}),
    "seeds": (_INT, 1, "Seeds per row (mean and std over them).", {"lower_bound": 1}),
    "teacher_width": (_INT, 32, "Filters of the teacher's first block.", {"lower_bound": 1}),
    "student_width": (_INT, 16, "Filters of the student's first block.", {"lower_bound": 1}),
    "model": (_STR, None, _MODEL_HELP, {}),
    "unsafe_deserialization": (flags.DEFINE_boolean, False, _UNSAFE_HELP, {}),
    "runs": (_INT, 50, "Timed interpreter invocations per thread count.", {"lower_bound": 1}),
    "output_dir": (_STR, "keras_kd_runs", "Where models, reports and results are written.", {}),
    "verbose": (flags.DEFINE_enum, 0, _VERBOSE_HELP, {"enum_values": ["0", "1", "2"]}),
}
# name -> (checker, message). The form of --dataset only: its files are looked for when it is
# loaded (a missing dataset then exits 2 with one line, see run_app), never at import or parse.
_VALIDATORS = {
    "dataset": (kd.data.is_valid_name, f"--dataset must be one of {list(kd.data.NAMES)}"),
    "learning_rate": (lambda rate: rate > 0, "--learning_rate must be > 0"),
    "model": (
        lambda path: path is None or os.path.exists(path),
        "--model must be an existing file or SavedModel directory",
    ),
    "output_dir": (
        _is_directory_path,
        "--output_dir must be a directory path (it may not exist yet), not a file or empty",
    ),
}
SHARED_FLAGS = tuple(_SHARED)


def _check_shared(names):
    unknown = sorted(set(names) - set(_SHARED))
    if unknown:
        raise ValueError(
            f"names must be shared flags, from {list(SHARED_FLAGS)}, received: {unknown}"
        )


def define(flag_values, function=None, **defaults):
    """Declares the shared flags a script uses, with its defaults, and ``--verbose``.

    The shared flags are those named by a parameter of ``function`` (the script's ``run``) that
    has a default, which becomes the flag's default, so that the command line and ``run`` cannot
    disagree; and those named in ``defaults``. Each keeps one help text, bounds and validator for
    every script. ``--verbose`` (default 0) is declared in every script, as ``run_app`` applies it.

    Args:
        flag_values: The script's own ``flags.FlagValues``.
        function: The function whose parameters name the flags (``run``), or ``None``.
        **defaults: Shared flag name to default, for flags ``function`` does not name or whose
            default differs from its parameter's, e.g. ``seeds=1``.

    Returns:
        ``{name: flags.FlagHolder}`` of the flags declared.

    Raises:
        ValueError: If a name of ``defaults`` is not a shared flag (``SHARED_FLAGS``), naming it.
        flags.IllegalFlagValueError: If a default has the wrong type or is out of bounds.

    Example:
        >>> FLAGS = flags.FlagValues()
        >>> def run(dataset="digits", epochs=40, verbose=0): ...
        >>> holders = define(FLAGS, run, seeds=3)
        >>> sorted(holders)
        ['dataset', 'epochs', 'seeds', 'verbose']
    """
    _check_shared(defaults)
    parameters = inspect.signature(function).parameters.values() if function else ()
    named = {
        p.name: p.default for p in parameters if p.name in _SHARED and p.default is not p.empty
    }
    defaults = {"verbose": "0", **named, **defaults}
    holders = {}
    for name in [n for n in _SHARED if n in defaults]:
        define_function, _, help_text, options = _SHARED[name]
        default = str(defaults[name]) if name == "verbose" else defaults[name]
        holders[name] = define_function(
            name=name, default=default, help=help_text, flag_values=flag_values, **options
        )
        if name in _VALIDATORS:
            checker, message = _VALIDATORS[name]
            flags.register_validator(name, checker, message=message, flag_values=flag_values)
    return holders


def with_settings(names="", **defaults):
    """Decorates a script's ``run(s, ...)`` so that it takes the shared flags as keywords.

    The shared flags a script's ``run`` takes are ``names`` (with their common defaults,
    ``_SHARED``) and those of ``defaults`` (with the script's defaults). The decorated ``run``
    takes the function's own parameters as before and the shared ones as keyword arguments; its
    signature lists them all with their defaults (``define`` and ``arguments`` read it; ``help(run)`` shows it). The
    function receives the shared ones in one ``types.SimpleNamespace``, its first parameter.

    Args:
        names: Space-separated names of shared flags, e.g. ``"dataset seed verbose"``.
        **defaults: Shared flag name to the script's default, e.g. ``epochs=40``.

    Returns:
        A decorator.

    Raises:
        ValueError: If a name is not a shared flag (``SHARED_FLAGS``), naming it.

    Example:
        >>> @with_settings("dataset seed", epochs=40)
        ... def run(s, method="dist"):  # s.dataset, s.seed, s.epochs
        ...     ...
        >>> run(epochs=2, method="kd")
    """
    wanted = [*names.split(), *defaults]
    _check_shared(wanted)
    shared = {name: defaults.get(name, row[1]) for name, row in _SHARED.items() if name in wanted}

    def decorate(function):
        keyword, own = inspect.Parameter.KEYWORD_ONLY, inspect.signature(function).parameters
        signature = inspect.Signature(
            list(own.values())[1:]
            + [inspect.Parameter(name, keyword, default=value) for name, value in shared.items()]
        )

        @functools.wraps(function)
        def run(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values = bound.arguments
            return function(types.SimpleNamespace(**{n: values.pop(n) for n in shared}), **values)

        run.__signature__ = signature
        return run

    return decorate


def arguments(function, flag_values, **flag_names):
    """The keyword arguments of ``function`` (a script's ``run``) read from the parsed flags.

    A parameter takes the value of the flag of its name, or of ``flag_names[parameter]``;
    ``verbose`` becomes Keras's ``fit`` verbosity (an int). Parameters without a flag keep their
    defaults.

    Args:
        function: The function whose parameters are filled.
        flag_values: The script's parsed ``flags.FlagValues``.
        **flag_names: Parameter name to flag name where they differ, e.g. ``depth="tree_depth"``.

    Returns:
        A dict for ``function(**arguments(...))``.

    Example:
        >>> result = run(**arguments(run, FLAGS, depth="tree_depth"))
    """
    values = {}
    for name in inspect.signature(function).parameters:
        flag = flag_names.get(name, name)
        if flag in flag_values:
            value = flag_values[flag].value
            values[name] = int(value) if name == "verbose" else value
    return values


def reject_extra_arguments(argv):
    """Raises ``app.UsageError`` when the command line holds arguments other than flags.

    Args:
        argv: What absl passes to ``main``: the program name, then the arguments left over.

    Raises:
        app.UsageError: Naming the extra arguments.

    Example:
        >>> reject_extra_arguments(["distill.py"])
    """
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")


def write_result(directory, name, result, table):
    """Writes a script's result as ``<directory>/<name>.json`` and its table as ``<name>.md``.

    Args:
        directory: An existing directory.
        name: File stem, e.g. ``"benchmark"``.
        result: The JSON-serializable result of ``run``.
        table: The markdown table of the result.

    Returns:
        ``result``.

    Example:
        >>> write_result("keras_kd_runs/benchmark", "benchmark", result, markdown(result))
    """
    with open(os.path.join(directory, f"{name}.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(directory, f"{name}.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    return result


def print_result(result, *lines):
    """Prints ``lines``, then ``result`` as the one JSON line that ends every script's output.

    Example:
        >>> print_result(result, f"teacher accuracy {result['teacher_acc']:.4f}", markdown(result))
    """
    for line in lines:
        print(line)
    print(json.dumps(result))


def keras_verbosity():
    """Returns the ``verbose`` argument for Keras ``fit`` that ``--verbose`` asks for.

    Returns:
        0 (silent) for ``--verbose=0``, 1 (progress bars) for 1, 2 (one line per epoch) for 2.

    Example:
        >>> model.fit(x, y, epochs=5, verbose=common_flags.keras_verbosity())
    """
    return int(flags.FLAGS["verbose"].value) if "verbose" in flags.FLAGS else 0


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
    level = keras_verbosity() if verbose is None else verbose
    if level not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, received: verbose={verbose!r}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.INFO if level == 2 else logging.WARNING)
    from keras_kd._compat import tf

    tf.get_logger().setLevel("INFO" if level == 2 else "ERROR")
    return level


def run_app(main, flag_values):
    """Runs ``main`` like ``absl.app.run``, but bad command lines exit 2 with one line, no traceback.

    ``flag_values``, the script's own flags, join absl's registry here (they are listed by
    ``--help`` under the script), and are marked parsed with it.

    A flag that fails its type, bounds, enum or validator, an ``app.UsageError`` raised by
    ``main`` (extra arguments, flags that do not fit together), or a dataset whose files are
    missing (``keras_kd.data.DatasetNotFoundError``: the message names the directory looked in,
    ``KERAS_KD_FASHION_MNIST`` and the package to install) prints ``<script>: <message>`` to stderr
    and exits with status 2, the convention of Unix tools for usage errors. ``--verbose`` is
    applied (``apply_verbosity``) before ``main`` runs.

    Args:
        main: The script's ``main(argv)``.
        flag_values: The script's ``flags.FlagValues`` (``define``).

    Raises:
        TypeError: If ``flag_values`` is not a ``flags.FlagValues``.

    Example:
        >>> if __name__ == "__main__":
        ...     common_flags.run_app(main, FLAGS)
    """
    if not isinstance(flag_values, flags.FlagValues):
        raise TypeError(
            f"flag_values must be the script's flags.FlagValues, received: flag_values={flag_values!r}"
        )
    own = flag_values
    flags.FLAGS.append_flag_values(own)
    for name in own:
        flags.FLAGS.register_flag_by_module(sys.argv[0], own[name])

    def guarded_main(argv):
        apply_verbosity()
        try:
            return main(argv)
        except (app.UsageError, kd.data.DatasetNotFoundError) as error:
            _exit_usage(argv[0], error)

    def parse_flags_or_exit(argv):
        try:
            remaining = flags.FLAGS(argv)
            own.mark_as_parsed()
            check_finite_floats()
            return remaining
        except flags.Error as error:
            _exit_usage(argv[0], error)

    app.run(guarded_main, flags_parser=parse_flags_or_exit)


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
