"""Magnitude pruning on tensorflow-model-optimization, and measuring the sparsity it reaches."""

import numpy as np
import tensorflow_model_optimization as tfmot  # noqa: E402  (after _compat: tfmot needs tf_keras)

from keras_kd._compat import keras
from keras_kd.compress import _common

_SCHEDULES = ("polynomial", "constant")
_KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel")


def prune(
    model,
    target_sparsity,
    schedule="polynomial",
    begin_step=0,
    end_step=None,
    frequency=100,
    m_by_n=None,
    layers=None,
):
    """Returns a copy of ``model`` whose weights are pruned to ``target_sparsity`` while it trains.

    Wraps the layers in tfmot's ``prune_low_magnitude``: every ``frequency`` training steps between
    ``begin_step`` and ``end_step`` the smallest-magnitude weights of each layer are set to zero and
    masked. The sparsity follows ``schedule``: ``"polynomial"`` (``PolynomialDecay``, from 0 at
    ``begin_step`` to ``target_sparsity`` at ``end_step``, Zhu & Gupta 2017) or ``"constant"``
    (``ConstantSparsity``: ``target_sparsity`` at every pruning step). ``m_by_n=(2, 4)`` prunes
    instead 2 of every 4 consecutive weights (``sparsity_m_by_n``), the structured sparsity that
    some accelerators run faster.

    Training needs the ``UpdatePruningStep`` callback: ``keras_kd.Distiller.fit`` adds it by itself;
    with ``keras.Model.fit`` pass ``callbacks=keras_kd.compress.training_callbacks(model)``. Call
    ``keras_kd.compress.strip`` after training to get a plain model for export.

    Paper: Zhu & Gupta (2017), "To prune, or not to prune: exploring the efficacy of pruning for
    model compression"; Han, Pool, Tran & Dally (2015), "Learning both Weights and Connections for
    Efficient Neural Networks".

    Args:
        model: A built Sequential or functional Keras model. It is not changed.
        target_sparsity: Final fraction of zero weights in each pruned layer, in [0, 1). With
            ``m_by_n`` the sparsity is ``m / n``: pass ``None`` (or that value).
        schedule: ``"polynomial"`` or ``"constant"``.
        begin_step: Training step from which pruning may start, >= 0. Steps count the training
            batches seen by the wrapped model, from 1 (tfmot's ``pruning_step``, kept across
            ``fit`` calls): masks are updated at each step ``s >= begin_step`` with
            ``(s - begin_step) % frequency == 0``.
        end_step: Last pruning step. Required for ``"polynomial"`` (a multiple of ``frequency``
            after ``begin_step``, or the final sparsity is never reached); for ``"constant"``
            ``None`` prunes until training ends.
        frequency: Steps between two pruning updates, >= 1.
        m_by_n: ``None`` or ``(m, n)`` with ``0 < m < n``: m zeros in every n consecutive weights.
            tfmot supports it on ``Dense`` and ``Conv2D`` kernels.
        layers: Names of the layers to prune; the others are left as they are. ``None`` prunes
            every layer tfmot can prune.

    Returns:
        A new model with ``PruneLowMagnitude`` wrappers around the pruned layers.

    Raises:
        ValueError: If an argument is out of range, ``layers`` names an unknown layer, or a layer
            cannot be pruned by tfmot (named in the message, with the way around it).
        TypeError: If ``model`` is not a Keras model.

    Example:
        >>> pruned = prune(student, 0.8, end_step=1000, frequency=100)
        >>> distiller = keras_kd.Distiller(student=pruned, teacher=teacher)  # fit adds the callback
    """
    _common.check_model(model, "prune")
    if m_by_n is not None:
        m_by_n = _check_m_by_n(m_by_n)
        expected = m_by_n[0] / m_by_n[1]
        if target_sparsity is not None and target_sparsity != expected:
            raise ValueError(
                f"with m_by_n={m_by_n} the sparsity is {m_by_n[0]}/{m_by_n[1]}={expected}; pass "
                f"target_sparsity=None or {expected}, received: target_sparsity={target_sparsity!r}"
            )
        target_sparsity = expected
    target_sparsity = _common.check_fraction("target_sparsity", target_sparsity)
    pruning_schedule = make_schedule(target_sparsity, schedule, begin_step, end_step, frequency)
    names = _common.check_layer_names(model, layers, "prune")
    check_prunable(model, names, m_by_n)
    params = {"pruning_schedule": pruning_schedule}
    if m_by_n is not None:
        params["sparsity_m_by_n"] = m_by_n

    def _wrap(layer):
        if names is None or layer.name in names:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, **params)
        return layer

    return _common.clone_with(model, _wrap)


def make_schedule(target_sparsity, schedule, begin_step, end_step, frequency):
    """Validates the schedule arguments of ``prune`` and returns the tfmot ``PruningSchedule``."""
    if schedule not in _SCHEDULES:
        raise ValueError(
            f"schedule must be one of {list(_SCHEDULES)}, received: schedule={schedule!r}"
        )
    begin_step = _common.check_positive_int("begin_step", begin_step, minimum=0)
    frequency = _common.check_positive_int("frequency", frequency)
    if schedule == "constant":
        end_step = -1 if end_step is None else end_step
        if end_step != -1:
            _common.check_positive_int("end_step", end_step, minimum=begin_step + 1)
        return tfmot.sparsity.keras.ConstantSparsity(
            target_sparsity, begin_step, end_step, frequency
        )
    if end_step is None:
        raise ValueError(
            "schedule='polynomial' needs end_step (the step at which target_sparsity is "
            "reached), e.g. end_step = epochs_of_pruning * steps_per_epoch; received: end_step=None"
        )
    _common.check_positive_int("end_step", end_step, minimum=begin_step + 1)
    if (end_step - begin_step) % frequency:
        raise ValueError(
            "end_step - begin_step must be a multiple of frequency, or the last pruning update "
            "misses end_step and the final sparsity is never reached; received: "
            f"begin_step={begin_step}, end_step={end_step}, frequency={frequency}"
        )
    return tfmot.sparsity.keras.PolynomialDecay(
        0.0, target_sparsity, begin_step, end_step, frequency=frequency
    )


def check_prunable(model, names, m_by_n=None):
    """Raises a ValueError naming each selected layer tfmot cannot prune, and the way around."""
    selected = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if names is not None:
        selected = [layer for layer in selected if layer.name in names]
    registry = _common.PruneRegistry
    unsupported = [
        layer
        for layer in selected
        if not isinstance(layer, tfmot.sparsity.keras.PrunableLayer)
        and not registry.supports(layer)
    ]
    if unsupported:
        others = [layer.name for layer in selected if layer not in unsupported]
        raise ValueError(
            f"tfmot cannot prune layer(s) {_common.layer_kinds(unsupported)}. "
            f"Leave them out with layers={others}, or make the layer class a "
            "tfmot.sparsity.keras.PrunableLayer (define get_prunable_weights)."
        )
    if m_by_n is not None:
        wrong = [
            layer
            for layer in selected
            if layer.weights and type(layer) not in (keras.layers.Dense, keras.layers.Conv2D)
        ]
        if wrong:
            fitting = [
                layer.name
                for layer in selected
                if type(layer) in (keras.layers.Dense, keras.layers.Conv2D)
            ]
            raise ValueError(
                f"m_by_n sparsity works on Dense and Conv2D kernels only, not on "
                f"{', '.join(_common.layer_kind(layer) for layer in wrong)}; pass layers={fitting}"
            )


def sparsity(model):
    """Measures the fraction of zero weights in each kernel of ``model``.

    Kernels are the weights that magnitude pruning acts on (``kernel``, ``depthwise_kernel``,
    ``pointwise_kernel``); biases and normalization weights are not counted. Pruning wrappers are
    looked through, so this works before and after ``strip``.

    Args:
        model: A Keras model, plain or with tfmot wrappers.

    Returns:
        A dict ``{layer_name: fraction_of_zeros}`` for every layer with a kernel, plus the key
        ``"total"``: zeros over all those kernels together.

    Example:
        >>> sparsity(keras_kd.compress.strip(pruned))["total"]
        0.8
    """
    result, zeros, size = {}, 0, 0
    for layer in _leaf_layers(model):
        kernels = [w for w in layer.weights if w.name.split("/")[-1].split(":")[0] in _KERNEL_NAMES]
        if not kernels:
            continue
        values = np.concatenate([np.asarray(k.numpy()).ravel() for k in kernels])
        result[layer.name] = float(np.mean(values == 0))
        zeros += int(np.sum(values == 0))
        size += values.size
    result["total"] = zeros / size if size else 0.0
    return result


def _leaf_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        elif isinstance(layer, _common.PruneLowMagnitude):
            yield layer.layer
        else:
            yield layer


def _check_m_by_n(m_by_n):
    ok = isinstance(m_by_n, (tuple, list)) and len(m_by_n) == 2
    ok = (
        ok
        and all(isinstance(v, int) and not isinstance(v, bool) for v in m_by_n)
        and 0 < m_by_n[0] < m_by_n[1]
    )
    if not ok:
        raise ValueError(
            f"m_by_n must be a pair (m, n) of integers with 0 < m < n, received: m_by_n={m_by_n!r}"
        )
    return tuple(m_by_n)
