"""Training data and settings shared by every scheme, validated before anything trains.

Every scheme takes the same keyword arguments (see ``keras_kd.schemes``): ``train``,
``epochs``, ``optimizer``, ``loss``, ``batch_size``, ``validation_data``, ``callbacks`` and
``verbose``. They are checked together by ``settings`` and carried as one ``Settings`` value,
which makes each model's optimizer, compiles plain models, and fits any model or Distiller the same
way.
"""

import dataclasses

import numpy as np

from keras_kd._checks import check_from_logits, check_model, output_shape
from keras_kd._compat import keras, tf
from keras_kd.distiller import Distiller

_OPTIMIZER_TYPES = (keras.optimizers.Optimizer, keras.optimizers.legacy.Optimizer)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Validated training settings of a scheme (made by ``settings``; see its arguments)."""

    train: object
    epochs: int
    optimizer: object
    loss: object
    batch_size: int
    validation_data: object
    callbacks: object
    verbose: object

    def new_optimizer(self):
        """Returns a new optimizer instance: every model a scheme trains gets its own."""
        return _make_optimizer(self.optimizer)

    def new_callbacks(self):
        """Returns the callbacks for one ``fit``: a factory's fresh list, else the given list."""
        if self.callbacks is None:
            return []
        return list(self.callbacks()) if callable(self.callbacks) else list(self.callbacks)

    def compile(self, model):
        """Compiles a plain model for training on the labels, with a new optimizer and accuracy."""
        model.compile(optimizer=self.new_optimizer(), loss=self.loss, metrics=["accuracy"])
        return model

    def fit(self, model, epochs=None, validation=True):
        """Fits a compiled model or Distiller on ``train``; returns its ``History.history`` dict.

        Args:
            model: A compiled ``keras.Model`` (a ``Distiller`` included).
            epochs: Epochs for this fit; ``None`` uses the settings' ``epochs``.
            validation: Whether to pass ``validation_data`` to ``fit``.
        """
        kwargs = {
            "epochs": self.epochs if epochs is None else epochs,
            "validation_data": self.validation_data if validation else None,
            "callbacks": self.new_callbacks(),
            "verbose": self.verbose,
        }
        if isinstance(self.train, tf.data.Dataset):
            history = model.fit(self.train, **kwargs)
        else:
            x, y = self.train
            history = model.fit(x, y, batch_size=self.batch_size, **kwargs)
        return {key: [float(v) for v in values] for key, values in history.history.items()}


def settings(
    train,
    epochs=10,
    optimizer="adam",
    loss=None,
    batch_size=64,
    validation_data=None,
    callbacks=None,
    verbose=0,
):
    """Checks the common scheme arguments and returns them as one ``Settings``.

    Args:
        train: A ``tf.data.Dataset`` of ``(x, y)`` (or ``(x, y, sample_weight)``) batches, or an
            ``(x, y)`` tuple of arrays of equal, non-zero length.
        epochs: Epochs of each training run, an integer >= 1.
        optimizer: An optimizer name (``"adam"``), a callable returning a new optimizer, or an
            optimizer instance used as a template (each model gets a copy made from its config).
        loss: The hard-label loss on logits; default
            ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``.
        batch_size: Batch size for array inputs, an integer >= 1 (a dataset is already batched).
        validation_data: ``None``, an ``(x, y)`` tuple of arrays, or a ``tf.data.Dataset``.
        callbacks: ``None``, a list of Keras callbacks given to every ``fit``, or a callable
            returning a fresh list for each ``fit`` (for stateful callbacks).
        verbose: Keras verbosity for ``fit``: 0, 1, 2 or ``"auto"``.

    Returns:
        A ``Settings``.

    Raises:
        ValueError: If an argument is out of range or malformed, naming the argument and value.
    """
    check_data("train", train)
    if validation_data is not None:
        check_data("validation_data", validation_data)
    check_count("epochs", epochs)
    check_count("batch_size", batch_size)
    _make_optimizer(optimizer)  # fails early on an unknown name or a factory returning no optimizer
    if callable(optimizer) and not isinstance(optimizer, _OPTIMIZER_TYPES):
        if optimizer() is optimizer():
            raise ValueError(
                "optimizer must return a new optimizer on each call (each model needs its own), "
                f"but it returned the same instance twice: optimizer={optimizer!r}"
            )
    if loss is None:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    check_from_logits(loss)
    if callbacks is not None and not callable(callbacks):
        callbacks = list(callbacks)
        bad = [c for c in callbacks if not isinstance(c, keras.callbacks.Callback)]
        if bad:
            raise ValueError(
                f"callbacks must be Keras callbacks, received: callbacks={callbacks!r}"
            )
    if verbose not in (0, 1, 2, "auto") or isinstance(verbose, bool):
        raise ValueError(f'verbose must be 0, 1, 2 or "auto", received: verbose={verbose!r}')
    return Settings(train, epochs, optimizer, loss, batch_size, validation_data, callbacks, verbose)


def distill(run, teacher, student, losses, alpha):
    """Distills ``teacher`` into ``student`` with a new ``Distiller``; returns its history dict.

    Args:
        run: The ``Settings`` to train with.
        teacher: The trained model to learn from (frozen).
        student: The model to train.
        losses: The Distiller's distillation loss layers.
        alpha: Weight of the hard-label loss.
    """
    distiller = Distiller(student=student, teacher=teacher, losses=losses, alpha=alpha)
    distiller.compile(optimizer=run.new_optimizer(), loss=run.loss, metrics=["accuracy"])
    return run.fit(distiller)


def _make_optimizer(optimizer):
    if isinstance(optimizer, _OPTIMIZER_TYPES):
        return type(optimizer).from_config(optimizer.get_config())
    if isinstance(optimizer, str):
        try:
            return keras.optimizers.get(optimizer)
        except ValueError:
            raise ValueError(
                f"optimizer is not a known optimizer name, received: optimizer={optimizer!r}"
            ) from None
    if callable(optimizer):
        made = optimizer()
        if not isinstance(made, _OPTIMIZER_TYPES):
            raise ValueError(
                f"optimizer must return a Keras optimizer when called, but it returned {made!r}: "
                f"optimizer={optimizer!r}"
            )
        return made
    raise ValueError(
        "optimizer must be a name, a callable returning a new optimizer, or an optimizer instance, "
        f"received: optimizer={optimizer!r}"
    )


def check_count(name, value):
    """Raises ``ValueError`` naming ``name`` unless ``value`` is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, received: {name}={value!r}")


def check_data(name, data):
    """Raises ``ValueError`` unless ``data`` is a dataset of (x, y[, w]) or an (x, y) tuple."""
    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if not isinstance(spec, tuple) or len(spec) not in (2, 3):
            raise ValueError(
                f"{name} must be a tf.data.Dataset of (x, y) or (x, y, sample_weight) batches, "
                f"received a dataset with element_spec={spec!r}"
            )
        return
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(
            f"{name} must be a tf.data.Dataset of (x, y) batches or an (x, y) tuple of arrays, "
            f"received: {name}={_short(data)}"
        )
    x, y = data
    leaves = list(x.values()) if isinstance(x, dict) else [x]
    lengths = [np.shape(leaf)[0] if np.ndim(leaf) else 0 for leaf in leaves + [y]]
    if not lengths[-1] or len(set(lengths)) != 1:
        raise ValueError(
            f"{name} must hold x and y of equal, non-zero length, received: "
            f"{name}=<arrays of lengths {lengths}> (x first, y last)"
        )


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_models(role, models):
    """Checks each model as the Distiller does and that all output logits over the same classes.

    Args:
        role: How the models are named in messages, e.g. ``"models"`` gives ``models[1]``.
        models: A list of ``(label, model)`` pairs, e.g. ``[("teacher", t), ("student", s)]``; a
            ``None`` label uses ``f"{role}[i]"``.

    Raises:
        ValueError: If a model is missing or unbuilt, ends in a softmax, appears twice, or its
            output shape differs from the first model's (both models and shapes named).
        TypeError: If a model is not a ``keras.Model``.
    """
    labeled = [(label or f"{role}[{i}]", model) for i, (label, model) in enumerate(models)]
    seen = {}
    for label, model in labeled:
        check_model(label, model)
        if id(model) in seen:
            raise ValueError(
                f"{label} and {seen[id(model)]} are the same model object; each must be a different "
                f"model, received: {label}={model.name!r}"
            )
        seen[id(model)] = label
    first_label, first = labeled[0]
    first_shape = output_shape(first)
    for label, model in labeled[1:]:
        shape = output_shape(model)
        if first_shape is None or shape is None:
            continue
        if shape.rank != first_shape.rank or shape[-1] != first_shape[-1]:
            raise ValueError(
                f"{label} {model.name!r} outputs shape {shape} but {first_label} {first.name!r} "
                f"outputs shape {first_shape}; every model must output logits over the same classes"
            )


def check_make_model(make_model):
    """Raises ``ValueError`` unless ``make_model`` is callable."""
    if not callable(make_model):
        raise ValueError(
            "make_model must be a callable returning a new keras.Model, received: "
            f"make_model={make_model!r}"
        )


def make(make_model, label):
    """Calls ``make_model()`` and checks that it returned a Keras model."""
    model = make_model()
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"make_model must return a keras.Model, but returned {model!r} for {label}"
        )
    return model


def accuracy(model, data, batch_size=256):
    """Top-1 accuracy of ``model`` (inference mode) on ``(x, y)`` arrays or a dataset of batches.

    Sparse or one-hot labels; examples with label -1 (unlabeled) are skipped.
    """
    correct = total = 0
    for batch in batches(data, batch_size):
        x, y = batch[0], np.asarray(batch[1])
        predicted = np.argmax(np.asarray(model(x, training=False)), axis=-1)
        if y.ndim == predicted.ndim + 1 and y.shape[-1] > 1:
            keep = y.sum(axis=-1) > 0
            y = np.argmax(y, axis=-1)
        else:
            y = y.reshape(predicted.shape)
            keep = y >= 0
        correct += int(np.sum((predicted == y) & keep))
        total += int(np.sum(keep))
    return correct / total if total else float("nan")


def batches(data, batch_size):
    """Yields a dataset's ``(x, y, ...)`` batches, or ``(x, y)`` array slices of ``batch_size``."""
    if isinstance(data, tf.data.Dataset):
        yield from data
        return
    x, y = data
    for start in range(0, len(y), batch_size):
        window = slice(start, start + batch_size)
        yield tf.nest.map_structure(lambda a, w=window: a[w], x), y[window]
