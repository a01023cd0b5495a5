"""Magnitude pruning on tensorflow-model-optimization, and measuring the sparsity it reaches."""

import numpy as np
import tensorflow_model_optimization as tfmot  # noqa: E402  (after _compat: tfmot needs tf_keras)

from keras_kd._checks import check_choice, check_fraction, check_model, check_positive_int
from keras_kd._compat import keras
from keras_kd.compress import _common, callbacks

_SCHEDULES = ("polynomial", "constant")
_KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel")
# Kernels that int8 export quantizes per output channel (the last axis; not transposed ones).
_CONV_TYPES = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_TRANSPOSED = tuple(getattr(keras.layers, f"Conv{d}DTranspose") for d in (1, 2, 3))


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

    Training needs tfmot's ``UpdatePruningStep`` callback; the returned model carries it
    (``keras_kd.compress.training_callbacks``), so its own ``fit`` and ``keras_kd.Distiller.fit``
    add it by themselves. Those callbacks also hold a ``ScheduleCheck``, which warns when ``fit``
    will end before the schedule reaches ``target_sparsity`` (e.g. ``frequency=100`` and 90
    training steps: no pruning at all). ``keras_kd.compress.strip`` after training gives a plain
    model for export.

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
        A new model with ``PruneLowMagnitude`` wrappers around the pruned layers, marked with the
        callbacks it needs (``keras_kd.model_callbacks``).

    Raises:
        ValueError: If an argument is out of range, ``layers`` names an unknown layer, or a layer
            cannot be pruned by tfmot (named in the message, with the way around it).
        TypeError: If ``model`` is not a Keras model.

    Example:
        >>> pruned = prune(student, 0.8, end_step=1000, frequency=100)
        >>> distiller = keras_kd.Distiller(student=pruned, teacher=teacher)  # fit adds the callback
        >>> pruned.compile("adam", loss)
        >>> pruned.fit(x, y, epochs=2)  # or plain Keras: this fit adds it too
    """
    check_model("model", model, graph=True, caller="prune")
    if m_by_n is not None:
        m_by_n = _check_m_by_n(m_by_n)
        expected = m_by_n[0] / m_by_n[1]
        if target_sparsity is not None and target_sparsity != expected:
            raise ValueError(
                f"with m_by_n={m_by_n} the sparsity is {m_by_n[0]}/{m_by_n[1]}={expected}; pass "
                f"target_sparsity=None or {expected}, received: target_sparsity={target_sparsity!r}"
            )
        target_sparsity = expected
    target_sparsity = check_fraction("target_sparsity", target_sparsity)
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

    return callbacks.mark(_common.clone_with(model, _wrap))


def make_schedule(target_sparsity, schedule, begin_step, end_step, frequency):
    """Validates the schedule arguments of ``prune`` and returns the tfmot ``PruningSchedule``."""
    check_choice("schedule", schedule, _SCHEDULES)
    begin_step = check_positive_int("begin_step", begin_step, minimum=0)
    frequency = check_positive_int("frequency", frequency)
    if schedule == "constant":
        end_step = -1 if end_step is None else end_step
        if end_step != -1:
            check_positive_int("end_step", end_step, minimum=begin_step + 1)
            first = callbacks.first_update(begin_step, frequency)
            if first > end_step:
                raise ValueError(
                    f"end_step must be >= {first}, the first pruning update (begin_step="
                    f"{begin_step}, frequency={frequency}; steps count from 1), or nothing is "
                    f"ever pruned, received: end_step={end_step}"
                )
        return tfmot.sparsity.keras.ConstantSparsity(
            target_sparsity, begin_step, end_step, frequency
        )
    if end_step is None:
        raise ValueError(
            "schedule='polynomial' needs end_step (the step at which target_sparsity is "
            "reached), e.g. end_step = epochs_of_pruning * steps_per_epoch; received: end_step=None"
        )
    check_positive_int("end_step", end_step, minimum=begin_step + 1)
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
    selected = _common.check_supported(
        model,
        names,
        "prune",
        _common.PruneRegistry,
        tfmot.sparsity.keras.PrunableLayer,
        "tfmot.sparsity.keras.PrunableLayer",
        "get_prunable_weights",
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


def fill_empty_channels(model, fraction=1e-3):
    """Returns a copy of ``model`` in which no convolution output channel is entirely zero.

    Magnitude pruning at high sparsity can zero every weight of an output channel (likely in a
    first layer of 9 weights per channel). Such a channel still outputs ``activation(bias)``, but
    int8 export quantizes convolution kernels per output channel: an all-zero channel gets the
    range [0, 0] and a zero weight scale, and TFLite stores the channel's bias as an int32 with
    scale ``input_scale * weight_scale`` = 0, which saturates at 2**31 - 1. The exported model
    then computes garbage for that channel and disagrees with its Keras model. Post-training
    quantization works around it, but pruning-preserving QAT
    (``keras_kd.compress.quantize(preserve="sparsity")``) keeps the zeros and trains the range
    [0, 0], so call this on the stripped pruned model before it.

    Each all-zero output channel of a ``Conv1D``/``Conv2D``/``Conv3D`` kernel (and each channel of
    a ``DepthwiseConv2D`` kernel) gets one weight, its first, set to ``fraction`` times the
    largest magnitude in the layer's kernel: a change far below one int8 step of that kernel,
    which gives the channel a range the int32 bias fits in, and removes one zero per channel.

    Args:
        model: A built Sequential or functional Keras model without tfmot wrappers (strip it
            first). It is not changed.
        fraction: The filled weight relative to the layer's largest weight magnitude, in (0, 1).

    Returns:
        A new model; the same weights where no channel was empty.

    Raises:
        ValueError: If ``fraction`` is out of range or the model is not a built Sequential or
            functional model.
        TypeError: If ``model`` is not a Keras model.

    Example:
        >>> pruned = keras_kd.compress.strip(pruned_and_trained)
        >>> qat = keras_kd.compress.quantize(fill_empty_channels(pruned), preserve="sparsity")
    """
    check_model("model", model, graph=True, caller="fill_empty_channels")
    fraction = check_fraction("fraction", fraction, "(0, 1)")
    copy = _common.copy_model(model)
    for layer in _leaf_layers(copy):
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        kernel = layer.depthwise_kernel if depthwise else getattr(layer, "kernel", None)
        conv = isinstance(layer, _CONV_TYPES) and not isinstance(layer, _TRANSPOSED)
        if kernel is None or not (depthwise or conv):
            continue
        values = kernel.numpy()
        flat = values.reshape(-1, values.shape[-1] * (values.shape[-2] if depthwise else 1))
        empty = ~flat.any(axis=0)
        if empty.any():
            largest = float(np.abs(flat).max())
            flat[0, empty] = fraction * (largest if largest > 0 else 1.0)
            kernel.assign(flat.reshape(values.shape))
    return copy


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
