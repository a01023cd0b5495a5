"""Architecture slimming: depthwise separable convolutions and low-rank Dense layers, started
from the original weights so that distillation only has to recover the approximation error."""

import copy

import numpy as np
from absl import logging

from keras_kd._checks import check_fraction, check_model, check_positive_int
from keras_kd._compat import keras
from keras_kd.compress import _common


def depthwise_separable(model, depth_multiplier=1, layers=None):
    """Returns a copy of ``model`` in which each Conv2D with a kernel larger than 1x1 is replaced
    by a DepthwiseConv2D followed by a 1x1 Conv2D.

    A kernel ``K`` of shape ``(kh, kw, c_in, c_out)`` becomes a depthwise kernel ``D`` of shape
    ``(kh, kw, c_in, depth_multiplier)`` and a pointwise kernel ``P`` of shape
    ``(c_in * depth_multiplier, c_out)`` with ``K[..., c, :] ~ sum_j D[..., c, j] P[c * m + j, :]``.
    For each input channel ``c`` the ``(kh * kw) x c_out`` slice of ``K`` is factorized by a
    truncated SVD keeping ``depth_multiplier`` singular values: by Eckart-Young this is the
    least-squares best separable kernel, so the new layers start as close to the original as the
    architecture allows (exactly equal when ``depth_multiplier >= min(kh * kw, c_out)``). The
    pointwise layer keeps the original name, bias, activation and regularizers, so feature taps on
    that name still work; the depthwise layer is named ``<name>_depthwise``. Parameters go from
    ``kh*kw*c_in*c_out`` to ``kh*kw*c_in*m + c_in*m*c_out``. Distill afterwards to recover accuracy.

    Paper: Howard, Zhu, Chen, Kalenichenko, Wang, Weyand, Andreetto & Adam (2017), "MobileNets:
    Efficient Convolutional Neural Networks for Mobile Vision Applications"; Chollet (2017),
    "Xception: Deep Learning with Depthwise Separable Convolutions".

    Args:
        model: A built Sequential or functional Keras model. It is not changed.
        depth_multiplier: Depthwise outputs per input channel (the rank kept per channel), >= 1.
        layers: Names of the Conv2D layers to replace; ``None`` replaces every Conv2D (not
            subclasses, not grouped) whose kernel is larger than 1x1.

    Returns:
        A new model with the same inputs and outputs.

    Raises:
        ValueError: If ``layers`` names an unknown layer or one that is not a replaceable Conv2D.
        TypeError: If ``model`` is not a Keras model.

    Example:
        >>> slim = depthwise_separable(student)
        >>> slim.count_params() < student.count_params()
        True
    """
    check_model("model", model, graph=True, caller="depthwise_separable")
    check_positive_int("depth_multiplier", depth_multiplier)
    names = _common.check_layer_names(model, layers, "depthwise_separable")

    def fits(layer):
        return (
            type(layer) is keras.layers.Conv2D
            and layer.groups == 1
            and tuple(layer.kernel_size) != (1, 1)
        )

    chosen = _choose(model, names, fits, "a Conv2D with a kernel larger than 1x1 and groups=1")
    plans = {}
    for layer in chosen:
        depthwise_kernel, pointwise_kernel = separable_kernels(
            layer.kernel.numpy(), depth_multiplier
        )
        depthwise = keras.layers.DepthwiseConv2D(
            layer.kernel_size,
            strides=layer.strides,
            padding=layer.padding,
            depth_multiplier=depth_multiplier,
            data_format=layer.data_format,
            dilation_rate=layer.dilation_rate,
            use_bias=False,
            name=f"{layer.name}_depthwise",
        )
        pointwise = dict(
            layer.get_config(),
            kernel_size=(1, 1),
            strides=(1, 1),
            padding="valid",
            dilation_rate=(1, 1),
        )
        weights = [pointwise_kernel[None, None]] + ([layer.bias.numpy()] if layer.use_bias else [])
        plans[layer.name] = (depthwise, [depthwise_kernel], pointwise, weights)
    return _rebuild(model, plans)


def low_rank(model, rank=None, energy=0.9, layers=None):
    """Returns a copy of ``model`` in which Dense kernels are factorized by truncated SVD.

    A kernel ``W`` of shape ``(M, N)`` with SVD ``U S V^T`` becomes two Dense layers:
    ``<name>_low_rank`` (``M -> K``, no bias, linear) with kernel ``U_K S_K^(1/2)``, then ``<name>``
    (``K -> N``, the original bias, activation and name) with kernel ``S_K^(1/2) V_K^T``: the best
    rank-``K`` approximation of ``W`` (Eckart-Young), ``M*N`` weights becoming ``K*(M+N)``. ``K`` is
    ``rank``, or when ``rank`` is ``None`` the smallest rank keeping ``energy`` of the sum of
    squared singular values. A layer is factorized only when that saves parameters
    (``K*(M+N) < M*N``); the others are left as they are (logged). Distill afterwards to recover
    accuracy.

    Paper: Denton, Zaremba, Bruna, LeCun & Fergus (2014), "Exploiting Linear Structure Within
    Convolutional Networks for Efficient Evaluation"; Sainath, Kingsbury, Sindhwani, Arisoy &
    Ramabhadran (2013), "Low-rank matrix factorization for deep neural network training with
    high-dimensional output targets".

    Args:
        model: A built Sequential or functional Keras model. It is not changed.
        rank: The rank ``K`` (>= 1; capped at ``min(M, N)``), or ``None`` to choose it by
            ``energy``.
        energy: Fraction of the squared singular values to keep when ``rank`` is ``None``, in
            (0, 1].
        layers: Names of Dense layers to factorize; ``None`` considers every Dense layer.

    Returns:
        A new model with the same inputs and outputs.

    Raises:
        ValueError: If an argument is out of range or ``layers`` names an unknown or non-Dense
            layer.
        TypeError: If ``model`` is not a Keras model.

    Example:
        >>> small = low_rank(student, energy=0.9)
        >>> small.get_layer("s_logits_low_rank").units            # the rank that was chosen
    """
    check_model("model", model, graph=True, caller="low_rank")
    if rank is not None:
        check_positive_int("rank", rank)
    energy = check_fraction("energy", energy, "[0, 1]")
    if energy == 0:  # its own message: tests/compress/test_slimming.py pins "energy must be in"
        raise ValueError(f"energy must be in (0, 1], received: energy={energy}")
    names = _common.check_layer_names(model, layers, "low_rank")
    chosen = _choose(model, names, lambda layer: type(layer) is keras.layers.Dense, "a Dense layer")
    plans = {}
    for layer in chosen:
        kernel = layer.kernel.numpy()
        u, s, vt = np.linalg.svd(kernel, full_matrices=False)
        k = min(rank, s.size) if rank is not None else _rank_for_energy(s, energy)
        m, n = kernel.shape
        if k * (m + n) >= m * n:
            logging.info(
                "low_rank: %s left as is: rank %d would not save parameters (%d x %d)",
                layer.name,
                k,
                m,
                n,
            )
            continue
        root = np.sqrt(s[:k])
        first = keras.layers.Dense(k, use_bias=False, name=f"{layer.name}_low_rank")
        second = dict(layer.get_config())
        weights = [(root[:, None] * vt[:k]).astype(kernel.dtype)] + (
            [layer.bias.numpy()] if layer.use_bias else []
        )
        plans[layer.name] = (first, [(u[:, :k] * root).astype(kernel.dtype)], second, weights)
    return _rebuild(model, plans)


def separable_kernels(kernel, depth_multiplier):
    """Splits a Conv2D kernel into the depthwise and pointwise kernels closest to it (see above).

    Args:
        kernel: Array ``(kh, kw, c_in, c_out)``.
        depth_multiplier: Rank kept per input channel.

    Returns:
        ``(depthwise (kh, kw, c_in, m), pointwise (c_in * m, c_out))``.
    """
    kh, kw, c_in, c_out = kernel.shape
    depthwise = np.zeros((kh, kw, c_in, depth_multiplier), kernel.dtype)
    pointwise = np.zeros((c_in * depth_multiplier, c_out), kernel.dtype)
    for c in range(c_in):
        u, s, vt = np.linalg.svd(kernel[:, :, c, :].reshape(kh * kw, c_out), full_matrices=False)
        r = min(depth_multiplier, s.size)
        root = np.sqrt(s[:r])
        depthwise[:, :, c, :r] = (u[:, :r] * root).reshape(kh, kw, r)
        pointwise[c * depth_multiplier : c * depth_multiplier + r] = root[:, None] * vt[:r]
    return depthwise, pointwise


def _rank_for_energy(singular_values, energy):
    squares = singular_values.astype(np.float64) ** 2
    if squares.sum() == 0:
        return 1
    kept = np.cumsum(squares) / squares.sum()
    return int(min(np.searchsorted(kept, energy - 1e-12) + 1, singular_values.size))


def _choose(model, names, fits, what):
    if names is None:
        return [layer for layer in model.layers if fits(layer)]
    wrong = [layer for layer in model.layers if layer.name in names and not fits(layer)]
    if wrong:
        raise ValueError(
            f"layers must name {what}; {', '.join(_common.layer_kind(x) for x in wrong)} is not"
        )
    return [layer for layer in model.layers if layer.name in names]


def _rebuild(model, plans):
    """Rebuilds ``model`` from its config, each planned layer replaced by two layers in sequence.

    ``plans[name] = (first_layer, first_weights, second_config, second_weights)``: the second layer
    keeps ``name``, so every layer that consumed ``name`` now consumes it, and the first one takes
    the replaced layer's inputs. The other layers keep their weights.
    """
    known = {layer.name for layer in model.layers}
    for name, (first, _, _, _) in plans.items():
        if first.name in known:
            raise ValueError(
                f"cannot split layer {name!r}: the model already has a layer named {first.name!r}"
            )
    config = copy.deepcopy(model.get_config())
    entries = []
    for entry in config["layers"]:
        name = entry["config"]["name"]
        if name not in plans:
            entries.append(entry)
            continue
        first, _, second_config, _ = plans[name]
        first_entry = keras.layers.serialize(first)
        second_entry = dict(entry, config=second_config)
        second_entry.pop("build_config", None)
        if "inbound_nodes" in entry:  # functional: the first layer takes over the inbound nodes
            first_entry.update(name=first.name, inbound_nodes=entry["inbound_nodes"])
            second_entry["inbound_nodes"] = [
                [[first.name, i, 0, {}]] for i in range(len(entry["inbound_nodes"]))
            ]
        entries += [first_entry, second_entry]
    config["layers"] = entries
    with _common.scopes():
        rebuilt = model.__class__.from_config(config)
    for layer in rebuilt.layers:
        if layer.name in plans:
            layer.set_weights(plans[layer.name][3])
        elif layer.name in known:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    for first, first_weights, _, _ in plans.values():
        rebuilt.get_layer(first.name).set_weights(first_weights)
    return rebuilt
