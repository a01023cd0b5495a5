"""Compression recipes that examples/compress.py and examples/pipeline.py share.

A recipe is a list of ``keras_kd.compress`` methods applied in a fixed order (slim, units, prune,
cluster, qat), each followed by fine-tuning (by distillation or on the labels alone).
"""

import numpy as np

import keras_kd as kd
from keras_kd import compress, keras

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
):
    """Returns ``train_fn(model)``, which distills ``model`` (or fits it on the labels alone).

    ``callbacks`` is a list of Keras callbacks or a function ``model -> list`` called per
    ``train_fn`` call; each fit's ``History.history`` is appended to ``histories`` when given.
    """

    def train_fn(model):
        if distill:
            trainer = kd.Distiller(
                model, teacher, losses=[kd.losses.LogitsKD(temperature)], alpha=alpha
            )
            extra = []  # Distiller.fit adds what the compressed student needs
        else:
            trainer, extra = model, compress.training_callbacks(model)
        given = callbacks(model) if callable(callbacks) else list(callbacks or [])
        trainer.compile(keras.optimizers.Adam(learning_rate), _loss(), metrics=["accuracy"])
        history = trainer.fit(
            x, y, epochs=epochs, batch_size=batch_size, verbose=verbose, callbacks=given + extra
        )
        if histories is not None:
            histories.append(history.history)
        return history

    return train_fn


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
):
    """Applies ``methods`` in the order of METHODS, fine-tuning with ``train_fn`` after each step.

    ``steps`` is the number of training steps of one ``train_fn`` call (for the pruning
    schedule). ``m_by_n`` replaces magnitude pruning by ``(m, n)`` structured pruning.
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
            frequency = max(1, steps // 20)
            if m_by_n is None:
                model = compress.prune(
                    model, sparsity, end_step=frequency * 14, frequency=frequency
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
            model = compress.quantize(
                model, preserve="clusters" if clustered else ("sparsity" if pruned else None)
            )
        train_fn(model)
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
