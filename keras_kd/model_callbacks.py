"""Callbacks a model needs in every ``fit``, recorded on the model that needs them.

Some models train correctly only with certain callbacks: a model with tfmot pruning wrappers needs
``UpdatePruningStep``, or its first training step fails on tfmot's assertion that the pruning step
is >= 0. ``require_callbacks`` records on such a model the function that makes its callbacks and
makes the model's own ``fit`` add them; a trainer that fits the model some other way (the
``keras_kd.Distiller`` fits its student inside its own ``fit``) calls ``add_required_callbacks``.
``keras_kd.compress`` marks the models it returns, so neither the Distiller nor a user's plain
``model.compile(...); model.fit(...)`` has to know which callbacks a compressed model needs.

A copy made by ``keras.models.clone_model`` or loaded by Keras is a new model without the mark
(``keras_kd.load_model`` marks the pruned models it loads):
call ``require_callbacks`` on it again (or pass the callbacks to ``fit`` yourself).
"""

import inspect
import types

from keras_kd._compat import keras

_MAKER = "keras_kd_required_callbacks"


def require_callbacks(model, make_callbacks):
    """Records the callbacks ``model`` needs, so that its ``fit`` and the Distiller's add them.

    After this call ``model.fit(...)`` adds every callback ``make_callbacks(model, log_dir)`` returns
    whose type is not among the callbacks given to it (``log_dir`` is the ``log_dir`` of a
    ``keras.callbacks.TensorBoard`` among them, else ``None``), and
    ``keras_kd.Distiller.fit`` does the same for a marked student.

    Paper: none (a Keras callback contract; Chollet et al. 2015, Keras).

    Args:
        model: The ``keras.Model`` that needs the callbacks. It is marked in place.
        make_callbacks: ``make_callbacks(model, log_dir) -> list of keras.callbacks.Callback``,
            called at the start of each ``fit``, so that every ``fit`` gets fresh callbacks.

    Returns:
        ``model``.

    Raises:
        TypeError: If ``model`` is not a ``keras.Model``.
        ValueError: If ``make_callbacks`` is not callable.

    Example:
        >>> require_callbacks(pruned, keras_kd.compress.training_callbacks)
        >>> pruned.fit(x, y, epochs=2)  # UpdatePruningStep is added by fit itself
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, received: model={model!r}")
    if not callable(make_callbacks):
        raise ValueError(
            "make_callbacks must be a callable make_callbacks(model, log_dir) -> list, "
            f"received: make_callbacks={make_callbacks!r}"
        )
    # Plain attributes: neither is trackable, so Keras saves and checkpoints the model as before.
    setattr(model, _MAKER, make_callbacks)
    model.fit = types.MethodType(_fit_adding_required_callbacks, model)
    return model


def add_required_callbacks(model, callbacks=None):
    """Returns ``callbacks`` plus those that ``model`` requires and ``callbacks`` lacks.

    A required callback is added unless one of its type is already there, so a user's own instance
    (e.g. an ``UpdatePruningStep`` passed to ``fit``) is kept and not doubled.

    Paper: none (a Keras callback contract; Chollet et al. 2015, Keras).

    Args:
        model: A Keras model, marked by ``require_callbacks`` or not.
        callbacks: The callbacks given to ``fit``, or ``None``.

    Returns:
        A new list: ``callbacks`` followed by the missing required ones (none for an unmarked
        model).

    Example:
        >>> board = keras.callbacks.TensorBoard("logs")
        >>> callbacks = add_required_callbacks(pruned, [board])  # [board, UpdatePruningStep, ...]
    """
    callbacks = list(callbacks or [])
    make_callbacks = getattr(model, _MAKER, None)
    if make_callbacks is None:
        return callbacks
    board = next((c for c in callbacks if isinstance(c, keras.callbacks.TensorBoard)), None)
    for needed in make_callbacks(model, board.log_dir if board is not None else None):
        if not any(isinstance(c, type(needed)) for c in callbacks):
            callbacks.append(needed)
    return callbacks


def _fit_adding_required_callbacks(model, *args, **kwargs):
    """``type(model).fit`` with the callbacks ``model`` requires added to its ``callbacks``."""
    fit = type(model).fit
    bound = inspect.signature(fit).bind(model, *args, **kwargs)
    bound.arguments["callbacks"] = add_required_callbacks(model, bound.arguments.get("callbacks"))
    return fit(*bound.args, **bound.kwargs)
