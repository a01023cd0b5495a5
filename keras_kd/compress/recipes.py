"""Compression recipes: several ``keras_kd.compress`` methods in a fixed order, each fine-tuned.

A recipe is a list of steps from ``RECIPE_STEPS`` (or one string joining them with ``+``, such as
``"prune+qat"``). ``apply_recipe`` runs them in the order of ``RECIPE_STEPS`` (slim, units, prune,
cluster, qat), whatever order they are given in, and calls your ``fine_tune`` after each: by
distillation, on the labels alone, or any training of your own. The steps combine the way tfmot's
collaborative optimization does: QAT after pruning keeps the zeros (pruning-preserving QAT), QAT
after clustering keeps the shared values (cluster-preserving QAT), and clustering after pruning
keeps the zeros too.
"""

import numpy as np

from keras_kd._checks import check_fraction, check_positive_int
from keras_kd._compat import keras
from keras_kd.compress import clustering, pruning, quantization, slimming, stripping, units

RECIPE_STEPS = ("slim", "units", "prune", "cluster", "qat")
# Variables of tfmot's wrappers that a converted model does not store as weights.
_RANGE_PREFIXES = (
    "optimizer_step",
    "kernel_min",
    "kernel_max",
    "post_activation",
    "pre_activation",
    "output_m",
)


def parse_recipe(recipe):
    """The steps of a recipe, checked: ``"prune+qat"`` or ``["prune", "qat"]`` -> ``["prune", "qat"]``.

    Paper: Han, Mao & Dally (2016), "Deep Compression" (pruning, then quantization, in stages).

    Args:
        recipe: A string joining distinct names of ``RECIPE_STEPS`` with ``+``, or a list of them.

    Returns:
        The list of steps, in the order given.

    Raises:
        ValueError: If the recipe is empty, or names a step twice or a step not in
            ``RECIPE_STEPS``.

    Example:
        >>> parse_recipe("prune+qat")
        ['prune', 'qat']
    """
    steps = [s.strip() for s in recipe.split("+")] if isinstance(recipe, str) else recipe
    try:
        steps = list(steps)
    except TypeError:
        steps = None
    valid = bool(steps) and all(isinstance(s, str) for s in steps)
    if not (valid and set(steps) <= set(RECIPE_STEPS) and len(set(steps)) == len(steps)):
        raise ValueError(
            f"recipe must be distinct names from {list(RECIPE_STEPS)}, given as a list or joined "
            f"with '+', received: recipe={recipe!r}"
        )
    return steps


def apply_recipe(
    model,
    recipe,
    fine_tune,
    steps,
    sparsity=0.8,
    units_fraction=0.5,
    clusters=16,
    energy=0.9,
    m_by_n=None,
    prune_end=0.7,
    keep_first_last=False,
    calibration_data=None,
    qat_learning_rate=None,
    strip_last=True,
):
    """Compresses ``model`` by the steps of ``recipe``, calling ``fine_tune`` after each step.

    - ``slim``: ``depthwise_separable`` then ``low_rank(energy=energy)``.
    - ``units``: ``prune_units(units_fraction)``.
    - ``prune``: magnitude pruning that rises polynomially to ``sparsity`` over the first
      ``prune_end`` of the ``steps`` of one fine-tuning, in about 20 mask updates; the rest of the
      fine-tuning recovers at that sparsity (Zhu & Gupta 2017). ``keep_first_last`` keeps the
      first and last layers with weights dense (the most sensitive: few weights per channel, per
      class). ``m_by_n=(m, n)`` prunes to that structure instead, in every Dense and Conv2D layer
      whose input size ``n`` divides.
    - ``cluster``: ``cluster(clusters)``, keeping the zeros of a pruned model.
    - ``qat``: quantization-aware training, preserving sparsity or clusters of the earlier steps.
      With ``calibration_data`` the activation ranges start at the float model's
      (``calibrate_ranges``) rather than tfmot's [-6, 6]; ``fine_tune`` gets
      ``qat_learning_rate``. Before pruning-preserving QAT, convolution channels that pruning
      emptied get one tiny weight (``fill_empty_channels``), or their int8 export is wrong.

    Every step but the last is stripped before the next one; the last is stripped too unless
    ``strip_last=False`` (for a caller that saves the trained, wrapped model).

    Paper: Zhu & Gupta (2017), "To prune, or not to prune"; Jacob et al. (2018), "Quantization and
    Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference"; Han, Mao & Dally
    (2016), "Deep Compression" (pruning, then clustering, then quantization).

    Args:
        model: A built Keras model (Sequential or functional).
        recipe: Steps of ``RECIPE_STEPS`` as a list or joined with ``+`` (``parse_recipe``).
        fine_tune: ``fine_tune(model, learning_rate)`` trains ``model`` in place after each step;
            ``learning_rate`` is ``qat_learning_rate`` for the QAT step and ``None`` (your own
            default) otherwise.
        steps: Optimizer steps of one ``fine_tune`` call, >= 1 (plans the pruning schedule).
        sparsity: Target sparsity of ``prune``, in [0, 1).
        units_fraction: Fraction of units removed by ``units``.
        clusters: Clusters per kernel of ``cluster``.
        energy: Energy kept by the low-rank factorization of ``slim``.
        m_by_n: ``(m, n)`` for structured pruning, or ``None`` for magnitude pruning.
        prune_end: Fraction of ``steps`` by which ``prune`` reaches ``sparsity``, in (0, 1].
        keep_first_last: Keep the first and last layers with weights dense when pruning.
        calibration_data: Training inputs that set the QAT activation ranges, or ``None``.
        qat_learning_rate: Learning rate passed to ``fine_tune`` for the QAT step.
        strip_last: Strip the wrappers of the last step too.

    Returns:
        The compressed model (a new model; ``model`` itself is not wrapped).

    Raises:
        ValueError: If ``recipe`` is not valid (``parse_recipe``), ``fine_tune`` is not callable,
            ``steps`` is not an integer >= 1 or ``prune_end`` is not in (0, 1]; raised before any
            step runs.

    Example:
        >>> def fine_tune(model, learning_rate=None):
        ...     model.compile("adam", kd.recipes.hard_loss(), metrics=["accuracy"])
        ...     model.fit(x, y, epochs=2)
        >>> small = kd.compress.apply_recipe(student, "prune+qat", fine_tune, steps=2 * 50)
    """
    ordered = [s for s in RECIPE_STEPS if s in parse_recipe(recipe)]
    if not callable(fine_tune):
        raise ValueError(
            f"fine_tune must be callable as fine_tune(model, learning_rate), received: "
            f"fine_tune={fine_tune!r}"
        )
    check_positive_int("steps", steps)
    check_fraction("prune_end", prune_end, "(0, 1]")
    pruned = clustered = False
    for index, step in enumerate(ordered):
        if step == "slim":
            model = slimming.low_rank(slimming.depthwise_separable(model), energy=energy)
        elif step == "units":
            model = units.prune_units(model, units_fraction)
        elif step == "prune":
            model = _prune(model, int(steps), sparsity, m_by_n, prune_end, keep_first_last)
            pruned = True
        elif step == "cluster":
            model = clustering.cluster(model, clusters, preserve_sparsity=pruned)
            clustered = True
        else:
            model = _quantize(model, pruned, clustered, calibration_data)
        fine_tune(model, qat_learning_rate if step == "qat" else None)
        if strip_last or index < len(ordered) - 1:
            model = stripping.strip(model)
    return model


def _prune(model, steps, sparsity, m_by_n, prune_end, keep_first_last):
    end = max(1, int(steps * prune_end))
    frequency = max(1, end // 20)
    if m_by_n is not None:
        fitting = [
            layer.name
            for layer in model.layers
            if type(layer) in (keras.layers.Dense, keras.layers.Conv2D)
            and layer.kernel.shape[-2] % m_by_n[1] == 0
        ]
        return pruning.prune(
            model, None, "constant", frequency=frequency, m_by_n=m_by_n, layers=fitting
        )
    weighted = [layer.name for layer in model.layers if layer.weights]
    layers = weighted[1:-1] if keep_first_last and len(weighted) > 2 else None
    end_step = frequency * (end // frequency)
    return pruning.prune(model, sparsity, end_step=end_step, frequency=frequency, layers=layers)


def _quantize(model, pruned, clustered, calibration_data):
    if pruned and not clustered:
        model = pruning.fill_empty_channels(model)
    preserve = "clusters" if clustered else ("sparsity" if pruned else None)
    quantized = quantization.quantize(model, preserve=preserve)
    if calibration_data is not None:
        calibrate_ranges(quantized, model, calibration_data)
    return quantized


def calibrate_ranges(quantized, model, x, examples=1024):
    """Starts each activation range of a QAT model at ``model``'s range on ``x`` (in place).

    tfmot starts every moving-average activation range at [-6, 6] and moves it 0.1 % a step
    towards what it sees, so a model whose activations are far smaller (a student distilled by a
    scale-free loss such as DIST has logits of about 0.1) trains for hundreds of steps with its
    outputs rounded to a few int8 levels, and can collapse. Calibrating the ranges first, as
    post-training quantization does, starts QAT where the float model is. Kernel ranges are left
    alone: tfmot sets them from the weights at every step.

    Paper: Jacob et al. (2018), "Quantization and Training of Neural Networks for Efficient
    Integer-Arithmetic-Only Inference" (QAT starting from a trained float model).

    Args:
        quantized: The model returned by ``keras_kd.compress.quantize(model)``.
        model: The float model it was made from (same layer names).
        x: Training inputs; the first ``examples`` are run through ``model``.
        examples: How many inputs to calibrate on.

    Returns:
        ``quantized``, its ranges set.

    Example:
        >>> qat = calibrate_ranges(kd.compress.quantize(student), student, x_train)
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


def float_params(model):
    """Parameters a compressed model stores: its weights without tfmot's range variables.

    Paper: Jacob et al. (2018), "Quantization and Training of Neural Networks for Efficient
    Integer-Arithmetic-Only Inference" (the range variables QAT adds).

    Args:
        model: A Keras model, plain or wrapped by QAT.

    Returns:
        The number of parameters, an int (``model.count_params()`` for a plain model).

    Example:
        >>> float_params(kd.compress.quantize(student)) == student.count_params()
        True
    """
    return sum(
        int(np.prod(w.shape))
        for w in model.weights
        if "quantize_layer" not in w.name and not w.name.split("/")[-1].startswith(_RANGE_PREFIXES)
    )
