"""Iterative magnitude pruning with fine-tuning, and lottery tickets (pruning with rewinding).

Both loops take a ``train_fn(model) -> None`` that trains the model it receives in place; the
caller decides how (a ``keras_kd.Distiller`` fit, a plain ``model.compile(...); model.fit(...)``,
...). The model handed to ``train_fn`` carries tfmot pruning wrappers holding a fixed mask, and the
callbacks they need (``keras_kd.compress.training_callbacks``): its own ``fit`` and
``keras_kd.Distiller.fit`` add them. A custom training loop must apply them itself.
"""

import numpy as np
import tensorflow_model_optimization as tfmot  # noqa: E402  (after _compat: tfmot needs tf_keras)

from keras_kd._checks import check_choice, check_fraction, check_model, check_positive_int
from keras_kd._compat import keras, tf
from keras_kd.compress import _common, callbacks, pruning, stripping

_REWIND = ("initial", "random")


@keras.utils.register_keras_serializable(package="keras_kd")
class HoldMask(tfmot.sparsity.keras.PruningSchedule):
    """A tfmot pruning schedule that never updates the mask: the mask set on the wrapper is kept.

    The wrapper still multiplies the weights by the mask at every training step, so the weights
    pruned before training stay at zero.

    Paper: Frankle & Carbin (2019), "The Lottery Ticket Hypothesis: Finding Sparse, Trainable
    Neural Networks" (retraining a subnetwork with its mask held fixed).

    Args:
        sparsity: The sparsity of the held mask, reported by tfmot's pruning summaries.

    Example:
        >>> tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=HoldMask(0.5))
    """

    def __init__(self, sparsity):
        self.sparsity = check_fraction("sparsity", sparsity)

    def __call__(self, step):
        return tf.constant(False), tf.constant(self.sparsity, tf.float32)

    def get_config(self):
        # tfmot's format, under the registered name so that a saved pruning wrapper finds the class.
        return {
            "class_name": keras.utils.get_registered_name(type(self)),
            "config": {"sparsity": self.sparsity},
        }


def prune_iteratively(model, train_fn, fraction_per_round=0.1, rounds=5, layers=None):
    """Prunes ``model`` in rounds, fine-tuning with ``train_fn`` after each round.

    Each round removes ``fraction_per_round`` of the weights still left in every pruned kernel
    (smallest magnitude first, per layer), then calls ``train_fn`` on the model with that mask held
    fixed; after ``rounds`` rounds the sparsity is ``1 - (1 - fraction_per_round) ** rounds``. This
    is the loop "evaluate importance, prune ~10%, fine-tune, repeat"; fine-tuning by distillation
    recovers what each cut costs.

    Paper: Han, Pool, Tran & Dally (2015), "Learning both Weights and Connections for Efficient
    Neural Networks" (iterative pruning and retraining).

    Args:
        model: A built Sequential or functional Keras model, usually trained. It is not changed.
        train_fn: ``train_fn(model) -> None``: trains the model in place, e.g. a closure that
            builds a ``keras_kd.Distiller(student=model, teacher=teacher)`` and fits it, or one
            that calls ``model.compile`` and ``model.fit`` (whose ``fit`` adds tfmot's callbacks).
        fraction_per_round: Fraction of the remaining weights removed per round, in (0, 1).
        rounds: Number of prune + fine-tune rounds, >= 1.
        layers: Names of the layers to prune; ``None`` prunes every layer tfmot can prune.

    Returns:
        A new plain model (no wrappers) with the pruned weights at zero, trained by the last round.

    Raises:
        ValueError: If an argument is out of range or a layer cannot be pruned (named).
        TypeError: If ``train_fn`` is not callable.

    Example:
        >>> def train_fn(m):
        ...     d = keras_kd.Distiller(student=m, teacher=teacher)
        ...     d.compile("adam", loss, metrics=["accuracy"])
        ...     d.fit(x, y, epochs=2, verbose=0)
        >>> sparse = prune_iteratively(student, train_fn, fraction_per_round=0.2, rounds=4)
    """
    _check_common(model, train_fn, rounds, "prune_iteratively")
    fraction = check_fraction("fraction_per_round", fraction_per_round, "(0, 1)")
    names = _common.check_layer_names(model, layers, "prune_iteratively")
    pruning.check_prunable(model, names)
    current = _common.copy_model(model)
    for round_index in range(1, rounds + 1):
        level = 1.0 - (1.0 - fraction) ** round_index
        masks = _magnitude_masks(current, names, level)
        wrapped = _apply_masks(current, names, masks, level)
        train_fn(wrapped)
        current = stripping.strip(wrapped)
    return current


def lottery_ticket(
    model,
    initial_weights,
    train_fn,
    target_sparsity=0.8,
    rounds=3,
    rewind_to="initial",
    layers=None,
):
    """Finds a sparse "winning ticket" in ``model``: prune, rewind the survivors, retrain; repeat.

    Each round prunes the smallest-magnitude trained weights of every pruned kernel, resets the
    surviving weights (and all biases and normalization weights) to ``initial_weights``, and calls
    ``train_fn`` with the mask held fixed. The sparsity grows geometrically to ``target_sparsity``
    in ``rounds`` rounds: ``1 - (1 - target_sparsity) ** (round / rounds)``.

    Rewinding to the weights of an early training iteration instead of initialization (pass those
    as ``initial_weights``) works better for deeper networks (Frankle, Dziugaite, Roy & Carbin 2020,
    "Linear Mode Connectivity and the Lottery Ticket Hypothesis"). ``rewind_to="random"`` re-draws
    the surviving weights from the layers' initializers instead: the paper's control, which should
    train worse than the ticket.

    Paper: Frankle & Carbin (2019), "The Lottery Ticket Hypothesis: Finding Sparse, Trainable
    Neural Networks".

    Args:
        model: The trained dense network, a built Sequential or functional Keras model. It is not
            changed.
        initial_weights: ``model.get_weights()`` saved before training (or after a few hundred
            steps, for late rewinding).
        train_fn: ``train_fn(model) -> None``: trains the model in place (as in
            ``prune_iteratively``).
        target_sparsity: Final fraction of zero weights in each pruned kernel, in (0, 1).
        rounds: Number of prune + rewind + retrain rounds, >= 1.
        rewind_to: ``"initial"`` (the ticket: rewind to ``initial_weights``) or ``"random"``
            (random re-initialization of the same mask, the control experiment).
        layers: Names of the layers to prune; ``None`` prunes every layer tfmot can prune.

    Returns:
        A new plain model (no wrappers): the ticket after its last retraining.

    Raises:
        ValueError: If an argument is out of range, ``initial_weights`` does not fit ``model``, or a
            layer cannot be pruned (named).
        TypeError: If ``train_fn`` is not callable.

    Example:
        >>> initial = student.get_weights()
        >>> train_fn(student)                                    # train the dense network first
        >>> ticket = lottery_ticket(student, initial, train_fn, target_sparsity=0.8, rounds=3)
    """
    _check_common(model, train_fn, rounds, "lottery_ticket")
    target = check_fraction("target_sparsity", target_sparsity, "(0, 1)")
    check_choice("rewind_to", rewind_to, _REWIND)
    _check_initial_weights(model, initial_weights)
    names = _common.check_layer_names(model, layers, "lottery_ticket")
    pruning.check_prunable(model, names)
    current = _common.copy_model(model)
    for round_index in range(1, rounds + 1):
        level = 1.0 - (1.0 - target) ** (round_index / rounds)
        masks = _magnitude_masks(current, names, level)
        rewound = _common.copy_model(model)
        if rewind_to == "initial":
            rewound.set_weights(initial_weights)
        else:
            rewound.set_weights(keras.models.clone_model(model).get_weights())
        wrapped = _apply_masks(rewound, names, masks, level)
        train_fn(wrapped)
        current = stripping.strip(wrapped)
    return current


def _check_common(model, train_fn, rounds, fn):
    check_model("model", model, graph=True, caller=fn)
    if not callable(train_fn):
        raise TypeError(
            f"train_fn must be a callable train_fn(model) -> None, received: train_fn={train_fn!r}"
        )
    check_positive_int("rounds", rounds)


def _check_initial_weights(model, initial_weights):
    """``initial_weights`` must be a list of arrays, one per array of ``model.get_weights()``."""
    expected = [tuple(w.shape) for w in model.get_weights()]
    try:
        received = [tuple(np.shape(w)) for w in initial_weights]
    except (TypeError, ValueError):  # not iterable, or an entry that is not an array
        received = None
    if received != expected:
        value = repr(initial_weights)
        value = value if len(value) <= 80 else value[:77] + "..."
        if received is not None:
            value = f"<{len(received)} arrays of shapes {received}>"
        raise ValueError(
            f"initial_weights must be model.get_weights() of {model.name!r} ({len(expected)} "
            f"arrays of shapes {expected}), received: initial_weights={value}"
        )


def _wrap(model, names, level):
    schedule = HoldMask(level)

    def _maybe_prune(layer):
        if names is None or layer.name in names:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    return _common.clone_with(model, _maybe_prune)


def _magnitude_masks(model, names, level):
    """{layer_name: [mask per prunable weight]} keeping the largest (1 - level) of each weight."""
    masks = {}
    for layer in _wrap(model, names, level).layers:
        if not isinstance(layer, _common.PruneLowMagnitude):
            continue
        layer_masks = []
        for weight, _, _ in layer.pruning_vars:
            values = np.abs(weight.numpy()).ravel()
            mask = np.ones(values.size, dtype=np.float32)
            mask[np.argsort(values, kind="stable")[: int(round(level * values.size))]] = 0.0
            layer_masks.append(mask.reshape(weight.shape))
        masks[layer.layer.name] = layer_masks
    return masks


def _apply_masks(model, names, masks, level):
    """A copy of ``model`` wrapped for pruning, with ``masks`` set and the masked weights zeroed,
    marked with the callbacks it needs to train."""
    wrapped = callbacks.mark(_wrap(model, names, level))
    for layer in wrapped.layers:
        if isinstance(layer, _common.PruneLowMagnitude):
            for (weight, mask_var, _), mask in zip(layer.pruning_vars, masks[layer.layer.name]):
                mask_var.assign(mask)
                weight.assign(weight * mask)
    return wrapped
