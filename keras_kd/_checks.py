"""The one validation module: argument checks that run before anything trains, converts or writes.

Each check raises ``ValueError`` (``TypeError`` where a model is not a model) whose message names
the argument and the value received, ``<arg> must be ..., received: <arg>=<value>``, and returns the
value in its canonical type (``float``, ``int``). Checks of the Distiller's own arguments (teachers,
losses, pairs, the hard-label loss) live in ``keras_kd._distiller_checks``; this module imports
nothing of keras_kd but ``_compat``, so losses, compress and every other room may use it.
"""

import math
import numbers

from keras_kd._compat import keras

# interval -> (lowest allowed, lowest included, highest allowed, highest included)
_INTERVALS = {
    "[0, 1)": (0.0, True, 1.0, False),
    "[0, 1]": (0.0, True, 1.0, True),
    "(0, 1)": (0.0, False, 1.0, False),
    "(0, 1]": (0.0, False, 1.0, True),
}


def is_real(value):
    """Whether ``value`` is a real number (a Python or numpy int or float), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_finite_at_least(value, minimum=0.0):
    """Whether ``value`` is a real number (not a bool), finite and >= ``minimum``."""
    return is_real(value) and math.isfinite(value) and value >= minimum


def _note(note):
    return f" ({note})" if note else ""


def check_positive(arg, value, note=None):
    """Returns ``float(value)``; raises ``ValueError`` unless it is a finite real number > 0.

    ``note`` (e.g. "the Beta distribution's parameter") is added in parentheses after the rule.
    """
    if not is_real(value):
        raise ValueError(f"{arg} must be a number > 0{_note(note)}, received: {arg}={value!r}")
    if not 0 < value < math.inf:
        finite = "" if value <= 0 else " and finite"
        raise ValueError(f"{arg} must be > 0{finite}{_note(note)}, received: {arg}={value!r}")
    return float(value)


def check_number(arg, value, minimum=0.0):
    """Returns ``float(value)``; raises ``ValueError`` unless it is a finite real >= ``minimum``.

    With the default ``minimum`` this is the check of a non-negative number (a loss weight).
    """
    if not is_finite_at_least(value, minimum):
        raise ValueError(f"{arg} must be a finite number >= {minimum:g}, received: {arg}={value!r}")
    return float(value)


def check_weights(**weights):
    """Returns the weights as floats, each finite and >= 0; raises ``ValueError`` if all are 0.

    For the weights of a loss's terms, e.g. ``beta, gamma = check_weights(beta=beta, gamma=gamma)``.
    """
    values = [check_number(arg, value) for arg, value in weights.items()]
    if not any(values):
        received = ", ".join(f"{arg}={value!r}" for arg, value in weights.items())
        rule = "must not all be 0" if len(weights) > 2 else "must not both be 0"
        raise ValueError(f"{' and '.join(weights)} {rule}, received: {received}")
    return values


def check_positive_int(arg, value, minimum=1, optional=False):
    """Returns ``int(value)``; raises ``ValueError`` unless it is an integer >= ``minimum``.

    With ``optional``, ``None`` is allowed too and returned as is.
    """
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        none = "None or " if optional else ""
        raise ValueError(f"{arg} must be {none}an integer >= {minimum}, received: {arg}={value!r}")
    return int(value)


def check_fraction(arg, value, interval="[0, 1)"):
    """Returns ``float(value)``; raises ``ValueError`` unless it is a number in ``interval``.

    ``interval`` is one of ``"[0, 1)"``, ``"[0, 1]"``, ``"(0, 1)"`` and ``"(0, 1]"``.
    """
    low, low_in, high, high_in = _INTERVALS[interval]
    ok = is_real(value) and (low <= value if low_in else low < value)
    if not (ok and (value <= high if high_in else value < high)):
        raise ValueError(f"{arg} must be a number in {interval}, received: {arg}={value!r}")
    return float(value)


def check_bool(arg, value):
    """Returns ``value``; raises ``ValueError`` unless it is ``True`` or ``False`` (not 1, "y")."""
    if not isinstance(value, bool):
        raise ValueError(f"{arg} must be True or False, received: {arg}={value!r}")
    return value


def check_choice(arg, value, choices):
    """Returns ``value``; raises ``ValueError``, listing ``choices``, unless it is one of them."""
    try:
        known = value in choices
    except TypeError:  # an unhashable value is no key of a dict or set
        known = False
    if not known:
        raise ValueError(f"{arg} must be one of {list(choices)}, received: {arg}={value!r}")
    return value


def is_graph_model(model):
    """Whether ``model`` is a tf_keras Functional or Sequential model with a known graph.

    Such a model lists its layers and their outputs (feature taps, layer rewrites, cloning);
    a subclassed model, or a Sequential model without an input shape, does not.
    """
    return isinstance(model, keras.Model) and bool(getattr(model, "_is_graph_network", False))


def check_model(arg, model, graph=False, caller=None):
    """Returns ``model``; raises unless it is a built tf_keras model (Functional or Sequential).

    Args:
        arg: The argument's name, e.g. ``"student"`` or ``"model"``.
        model: The value received.
        graph: Also require a Functional or Sequential model (whose layers can be tapped or
            rewritten), refusing subclassed ones.
        caller: The function to name in the message (``"prune needs a built model"``); by default
            the message names the argument (``"student must be a built model"``).

    Raises:
        ValueError: If ``model`` is None, not built, or (with ``graph``) a subclassed model.
        TypeError: If ``model`` is not a ``keras.Model`` of ``keras_kd.keras``.
    """
    if model is None:
        raise ValueError(f"{arg} is required, received: {arg}=None")
    needs = f"{caller} needs" if caller else f"{arg} must be"
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"{needs} a keras.Model (from keras_kd import keras), received: {arg}={model!r}"
        )
    if graph and not is_graph_model(model) and not isinstance(model, keras.Sequential):
        raise ValueError(
            f"{needs} a Sequential or functional model (rebuild it with keras.Input(...) and "
            "layer calls so that its layers can be listed and rewritten), received: "
            f"{arg}={model.name!r}, a subclassed model"
        )
    if not model.built:
        raise ValueError(
            f"model {model.name!r} is not built; {needs} a built model (give it an Input layer or "
            f"input_shape, or call {arg}.build(input_shape) first), received: {arg}={model.name!r} "
            "with no input shape"
        )
    return model
