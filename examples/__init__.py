"""Example scripts over keras_kd's public API; each runs both ways, with the same flags:

    python -m examples.distill --epochs=5
    python examples/distill.py --epochs=5

Run as a file, a script has no package, so it starts with this preamble (before any other import
of ``examples`` or ``keras_kd``); it puts the repository root on ``sys.path`` and imports this
package, as ``python -m`` does:

    import os
    import sys

    if not __package__:  # python examples/<name>.py: import the package as `python -m` does
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)

Importing this package quiets TensorFlow's C++ logs before TensorFlow is imported: it sets
``TF_CPP_MIN_LOG_LEVEL`` to 3 (0 when the command line has ``--verbose=2``) unless it is already
set, and filters the lines TensorFlow prints while it loads by that level too (they ignore it: its
logging is not initialized yet). ``--verbose`` is applied in full, once the flags are parsed, by
``examples.common_flags.apply_verbosity``. tf_keras's warning that ``.h5`` is a legacy format is
not shown: the examples save tfmot's quantization-aware models as ``.h5`` on purpose (tf_keras 2.21
cannot reload them from ``.keras``).
"""

import contextlib
import os
import re
import sys
import tempfile
import warnings

_LEVEL_VAR = "TF_CPP_MIN_LOG_LEVEL"
# C++ log lines (absl / TSL format) and the banner absl prints before its logging is initialized.
_NATIVE_LINE = re.compile(r"([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.-]+:\d+\]")
_NATIVE_BANNER = "WARNING: All log messages before absl::InitializeLog() is called"
_NATIVE_CONTINUATION = "To enable the following instructions:"  # the CPU feature line's second line
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}


def _verbose_on_command_line(argv):
    """``--verbose`` from ``argv`` as absl will parse it (``--verbose=2`` or ``--verbose 2``)."""
    value = None
    for i, arg in enumerate(argv[1:], start=1):
        if arg == "--":
            break
        if arg.startswith("--verbose="):
            value = arg[len("--verbose=") :]
        elif arg == "--verbose" and i + 1 < len(argv):
            value = argv[i + 1]
    return int(value) if value in ("0", "1", "2") else 0


def _keep(line, level):
    match = _NATIVE_LINE.match(line)
    if match:
        return _SEVERITY[match.group(1)] >= level
    return level == 0 or not line.startswith((_NATIVE_BANNER, _NATIVE_CONTINUATION))


@contextlib.contextmanager
def _native_stderr_filtered(level):
    """Sends file descriptor 2 to a file, then writes back the lines that ``level`` keeps."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
            sys.stderr.write("".join(s for s in text.splitlines(True) if _keep(s, level)))
            sys.stderr.flush()


def _quiet_tensorflow():
    if _LEVEL_VAR not in os.environ:
        verbose = _verbose_on_command_line(getattr(sys, "argv", None) or [""])
        os.environ[_LEVEL_VAR] = "0" if verbose >= 2 else "3"
    level = os.environ[_LEVEL_VAR]
    if "tensorflow" in sys.modules or not level.isdigit() or int(level) == 0:
        return
    with _native_stderr_filtered(int(level)):
        import keras_kd._compat  # noqa: F401  (imports TensorFlow)


_quiet_tensorflow()
warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")
