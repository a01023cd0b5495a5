"""Compression recipes that examples/compress.py and examples/pipeline.py share.

A recipe is a list of ``keras_kd.compress`` methods applied in a fixed order (slim, units, prune,
cluster, qat), each followed by fine-tuning (by distillation or on the labels alone).
"""

import math

import numpy as np

import keras_kd as kd
from keras_kd import compress, keras
from keras_kd.compress.pruning import fill_empty_channels

METHODS = ("slim", "units", "prune", "cluster", "qat")


def valid_methods(methods):
    """True when ``methods`` is a non-empty list of distinct names from ``METHODS``."""
    return bool(methods) and set(methods) <= set(METHODS) and len(set(methods)) == len(methods)


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def make_train_fn(
    teacher,
    x,
    y,
    epochs,
    batch_size=64,
    learning_rate=3e-3,
    temperature=4.0,
    alpha=0.1,
    distill=True,
    verbose=0,
    callbacks=None,
    histories=None,
    distill_losses=None,
    cosine=False,
):
    """Returns ``train_fn(model, rate=None)``, which distills ``model`` (or fits it on the labels).

    ``rate`` overrides ``learning_rate`` for one call.

    ``callbacks`` is a list of Keras callbacks or a function ``model -> list`` called per
    ``train_fn`` call; each fit's ``History.history`` is appended to ``histories`` when given.
    ``distill_losses`` is a function returning fresh distillation loss layers for each call;
    ``None`` distills with ``LogitsKD(temperature)``. With ``cosine`` the learning rate of each
    call decays from ``learning_rate`` to 0 along a cosine (Loshchilov & Hutter 2017), so that a
    compressed model ends its fine-tuning at rest rather than at the full step size.
    """
    steps = epochs * math.ceil(len(x) / batch_size)

    def train_fn(model, rate=None):
        rate = learning_rate if rate is None else rate
        if distill:
            losses = distill_losses() if distill_losses else [kd.losses.LogitsKD(temperature)]
            trainer = kd.Distiller(model, teacher, losses=losses, alpha=alpha)
            extra = []  # Distiller.fit adds what the compressed student needs
        else:
            trainer, extra = model, compress.training_callbacks(model)
        given = callbacks(model) if callable(callbacks) else list(callbacks or [])
        if cosine:
            rate = keras.optimizers.schedules.CosineDecay(rate, steps)
        trainer.compile(keras.optimizers.Adam(rate), _loss(), metrics=["accuracy"])
        history = trainer.fit(
            x, y, epochs=epochs, batch_size=batch_size, verbose=verbose, callbacks=given + extra
        )
        if histories is not None:
            histories.append(history.history)
        return history

    return train_fn


def calibrate_ranges(quantized, model, x, examples=1024):
    """Starts each activation range of a QAT model at ``model``'s range on ``x`` (in place).

    tfmot starts every moving-average activation range at [-6, 6] and moves it 0.1 % a step
    towards what it sees, so a model whose activations are far smaller (a student distilled by a
    scale-free loss such as DIST has logits of about 0.1) trains for hundreds of steps with its
    outputs rounded to a few int8 levels, and can collapse. Calibrating the ranges first, as
    post-training quantization does, starts QAT where the float model is (Jacob et al. 2018, who
    also start from a trained float model). Kernel ranges are left alone: tfmot sets them from
    the weights at every step.

    Args:
        quantized: The model returned by ``keras_kd.compress.quantize(model)``.
        model: The float model it was made from (same layer names).
        x: Training inputs; the first ``examples`` are run through ``model``.
        examples: How many inputs to calibrate on.

    Returns:
        ``quantized``, its ranges set.
    """
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    outputs = probe.predict(x[:examples], batch_size=256, verbose=0)
    ranges = {
        layer.name: (min(0.0, float(np.min(out))), max(0.0, float(np.max(out))))
        for layer, out in zip(layers, outputs if len(layers) > 1 else [outputs], strict=True)
    }
    for wrapper in quantized.layers:
        inner = getattr(wrapper, "layer", None)
        if inner is None or inner.name not in ranges:
            continue
        for weight in wrapper.weights:
            short = weight.name.split("/")[-1].split(":")[0]
            if short.endswith(("_min", "_max")) and not short.startswith("kernel"):
                bound = ranges[inner.name][short.endswith("_max")]
                weight.assign(np.full(weight.shape, bound, dtype=weight.dtype.as_numpy_dtype))
    return quantized


def apply_methods(
    model,
    methods,
    train_fn,
    steps,
    sparsity=0.8,
    units_fraction=0.5,
    clusters=16,
    energy=0.9,
    m_by_n=None,
    strip_last=True,
    prune_end=0.7,
    keep_first_last=False,
    calibration_data=None,
    qat_learning_rate=None,
):
    """Applies ``methods`` in the order of METHODS, fine-tuning with ``train_fn`` after each step.

    ``steps`` is the number of training steps of one ``train_fn`` call (for the pruning
    schedule): magnitude pruning rises polynomially to ``sparsity`` over the first ``prune_end``
    of them, in about 20 mask updates, and the rest of the fine-tuning recovers at that sparsity
    (Zhu & Gupta 2017); with ``keep_first_last`` the first and last layers with weights stay
    dense (the first has few weights per channel, the last few per class: the most sensitive, as
    ``keras_kd.compress.quantize`` keeps them 8-bit). ``m_by_n`` replaces magnitude pruning by
    ``(m, n)`` structured pruning. With ``calibration_data`` the QAT activation ranges start at
    the float model's (``calibrate_ranges``) rather than tfmot's [-6, 6], and
    ``qat_learning_rate`` (default: ``train_fn``'s) fine-tunes the QAT step.
    Before pruning-preserving QAT, convolution channels that pruning emptied get one tiny weight
    (``keras_kd.compress.pruning.fill_empty_channels``), or their int8 export is wrong.
    Returns the stripped model; with ``strip_last=False`` the last step's wrappers stay (for a
    caller that saves the trained, wrapped model and strips it later).
    """
    pruned = clustered = False
    ordered = [m for m in METHODS if m in methods]
    for index, method in enumerate(ordered):
        if method == "slim":
            model = compress.low_rank(compress.depthwise_separable(model), energy=energy)
        elif method == "units":
            model = compress.prune_units(model, units_fraction)
        elif method == "prune":
            end = max(1, int(steps * prune_end))
            frequency = max(1, end // 20)
            if m_by_n is None:
                end_step = frequency * (end // frequency)
                weighted = [layer.name for layer in model.layers if layer.weights]
                layers = weighted[1:-1] if keep_first_last and len(weighted) > 2 else None
                model = compress.prune(
                    model, sparsity, end_step=end_step, frequency=frequency, layers=layers
                )
            else:
                fitting = [
                    layer.name
                    for layer in model.layers
                    if type(layer) in (keras.layers.Dense, keras.layers.Conv2D)
                    and layer.kernel.shape[-2] % m_by_n[1] == 0
                ]
                model = compress.prune(
                    model, None, "constant", frequency=frequency, m_by_n=m_by_n, layers=fitting
                )
            pruned = True
        elif method == "cluster":
            model = compress.cluster(model, clusters, preserve_sparsity=pruned)
            clustered = True
        else:
            if pruned and not clustered:
                model = fill_empty_channels(model)
            float_model = model
            model = compress.quantize(
                model, preserve="clusters" if clustered else ("sparsity" if pruned else None)
            )
            if calibration_data is not None:
                calibrate_ranges(model, float_model, calibration_data)
        train_fn(model, qat_learning_rate if method == "qat" else None)
        if strip_last or index < len(ordered) - 1:
            model = compress.strip(model)
    return model


def float_params(model):
    """Parameters of the float layers (a QAT model's range variables are not weights to store)."""
    return sum(
        int(np.prod(w.shape))
        for w in model.weights
        if "quantize_layer" not in w.name and not _is_range(w)
    )


def _is_range(weight):
    name = weight.name.split("/")[-1]
    return name.startswith(
        (
            "optimizer_step",
            "kernel_min",
            "kernel_max",
            "post_activation",
            "pre_activation",
            "output_m",
        )
    )
