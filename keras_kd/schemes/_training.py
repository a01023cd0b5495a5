"""The training options every scheme shares, validated before anything trains, and its result:
every scheme takes its models (or model factories) first, then ``train`` and ``validation_data``,
then the same keyword-only training options, ``OPTIONS``. ``settings`` checks them and returns one
``Settings``, which makes each model's optimizer and losses, compiles and fits every model the same
way. Every scheme returns one ``SchemeResult``.
"""

import dataclasses
import reprlib

import numpy as np

from keras_kd._checks import check_fraction, check_positive_int
from keras_kd._compat import keras, tf
from keras_kd._distiller_checks import (
    check_from_logits,
    check_logits_model,
    check_losses,
    output_shape,
)
from keras_kd.distiller import Distiller
from keras_kd.training_step import build_before_fit

_OPTIMIZER_TYPES = (keras.optimizers.Optimizer, keras.optimizers.legacy.Optimizer)

# The shared training options and their defaults. ``losses=None`` and ``alpha=None`` mean the
# measured defaults: the Distiller's (``keras_kd.losses.defaults``), or a scheme's own method's.
OPTIONS = {
    "epochs": 10,
    "batch_size": 64,
    "optimizer": "adam",
    "loss": None,
    "losses": None,
    "alpha": None,
    "callbacks": None,
    "verbose": 0,
}


@dataclasses.dataclass(frozen=True)
class SchemeResult:
    """What every scheme returns: the trained models, their histories and the scheme's own extras.

    Paper: the schemes' own (see each scheme); this is their common result.

    Attributes:
        models: The trained models in training order (generations, assistants then the student,
            the cohort, the refinery's rounds); the final student is last, except in
            ``label_refinery`` whose final student is the round best on ``validation_data``.
        histories: One ``fit`` history dict (``History.history``) per model in ``models``.
        extras: The scheme's own results, by name: ``ensemble`` (``born_again``), ``learner`` and
            ``history`` (``mutual_learning``: the ``MutualLearner`` and its joint log),
            ``val_accuracies`` and ``best_round`` (``label_refinery``), ``stage1_history``,
            ``fsp_before``, ``fsp_after``, ``scratch`` and ``scratch_history``
            (``fsp_two_stage``). Each is also an attribute: ``result.ensemble``.
        student_index: The index of the final student in ``models``.

    The names of the earlier per-scheme results still read: ``generations`` (``models``),
    ``assistants`` (``models[:-1]``), ``best_model`` and ``compressed`` (``student``),
    ``history`` and ``stage2_history`` (the student's history).

    Example:
        >>> result = schemes.born_again(teacher, make_model, (x_train, y_train), epochs=3)
        >>> result.student, result.histories[-1]["accuracy"], result.extras["ensemble"]
    """

    models: list
    histories: list
    extras: dict = dataclasses.field(default_factory=dict)
    student_index: int = -1

    @property
    def student(self):
        """The scheme's final student, ``models[student_index]``."""
        return self.models[self.student_index]

    def __getattr__(self, name):
        if name.startswith("__") or name in ("models", "histories", "extras", "student_index"):
            raise AttributeError(name)
        if name in self.extras:
            return self.extras[name]
        if name in _OLD_NAMES:
            return _OLD_NAMES[name](self)
        raise AttributeError(
            f"SchemeResult has no attribute {name!r}; its extras are {sorted(self.extras)}"
        )


_OLD_NAMES = {
    "generations": lambda result: result.models,
    "assistants": lambda result: result.models[:-1],
    "best_model": lambda result: result.student,
    "compressed": lambda result: result.student,
    "history": lambda result: result.histories[result.student_index],
    "stage2_history": lambda result: result.histories[result.student_index],
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Validated training options of a scheme (made by ``settings``; see ``OPTIONS``)."""

    train: object
    validation_data: object
    epochs: int
    batch_size: int
    optimizer: object
    loss: object
    losses: object
    alpha: object
    callbacks: object
    verbose: object

    def new_optimizer(self):
        """Returns a new optimizer instance: every model a scheme trains gets its own."""
        return _make_optimizer(self.optimizer)

    def new_losses(self):
        """Returns new distillation loss layers for one model, or ``None`` for the defaults."""
        return None if self.losses is None else _make_losses(self.losses)

    def new_callbacks(self):
        """Returns the callbacks for one ``fit``: a factory's fresh list, else the given list."""
        if self.callbacks is None:
            return []
        return list(self.callbacks()) if callable(self.callbacks) else list(self.callbacks)

    def compile(self, model):
        """Compiles a plain model for training on the labels, with a new optimizer and accuracy."""
        model.compile(optimizer=self.new_optimizer(), loss=self.loss, metrics=["accuracy"])
        return model

    def distill(self, teacher, student):
        """Distills ``teacher`` into ``student`` with a new ``Distiller``; returns its history.

        The Distiller gets new copies of ``losses`` and ``alpha``; ``None`` leaves either to the
        Distiller's measured default (``keras_kd.losses.defaults``).
        """
        distiller = Distiller(
            student=student, teacher=teacher, losses=self.new_losses(), alpha=self.alpha
        )
        distiller.compile(optimizer=self.new_optimizer(), loss=self.loss, metrics=["accuracy"])
        return self.fit(distiller)

    def fit(self, model, epochs=None):
        """Fits a compiled model or Distiller on ``train``; returns its ``History.history`` dict.

        Args:
            model: A compiled ``keras.Model`` (a ``Distiller`` included).
            epochs: Epochs for this fit; ``None`` uses the settings' ``epochs``.
        """
        kwargs = {
            "epochs": self.epochs if epochs is None else epochs,
            "validation_data": self.validation_data,
            "callbacks": self.new_callbacks(),
            "verbose": self.verbose,
        }
        x, y = (self.train, None) if isinstance(self.train, tf.data.Dataset) else self.train
        build_before_fit(model, x, y)  # one trace of the step, not two (a Distiller's: in fit)
        history = model.fit(x, y, batch_size=None if y is None else self.batch_size, **kwargs)
        return {key: [float(v) for v in values] for key, values in history.history.items()}


def settings(scheme, train, validation_data=None, **options):
    """Checks a scheme's data and training options and returns them as one ``Settings``.

    Args:
        scheme: The scheme's name, for the message about an unknown option.
        train: A ``tf.data.Dataset`` of ``(x, y)`` (or ``(x, y, sample_weight)``) batches, or an
            ``(x, y)`` tuple of arrays of equal, non-zero length.
        validation_data: ``None``, an ``(x, y)`` tuple of arrays, or a ``tf.data.Dataset``.
        **options: Any of ``OPTIONS``:
            ``epochs``: epochs of each training run, an integer >= 1.
            ``batch_size``: batch size for array inputs, an integer >= 1.
            ``optimizer``: an optimizer name (``"adam"``), a callable returning a new optimizer,
            or an optimizer instance used as a template (each model gets a copy from its config).
            ``loss``: the hard-label loss on logits; default
            ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``.
            ``losses``: distillation loss layers (each model gets copies made from their configs)
            or a callable returning a new list; ``None``: the measured default.
            ``alpha``: weight of the hard-label loss in [0, 1]; ``None``: the measured default.
            ``callbacks``: ``None``, a list of Keras callbacks given to every ``fit``, or a
            callable returning a fresh list for each ``fit`` (for stateful callbacks).
            ``verbose``: Keras verbosity for ``fit``: 0, 1, 2 or ``"auto"``.

    Returns:
        A ``Settings``.

    Raises:
        TypeError: If an option is not one of ``OPTIONS``, as Python does for a keyword.
        ValueError: If an argument is out of range or malformed, naming the argument and value.
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(
            f"{scheme}() got an unexpected keyword argument {unknown[0]!r}; its training options "
            f"are {sorted(OPTIONS)}"
        )
    values = {**OPTIONS, **options}
    check_data("train", train)
    if validation_data is not None:
        check_data("validation_data", validation_data)
    check_positive_int("epochs", values["epochs"])
    check_positive_int("batch_size", values["batch_size"])
    _check_factory("optimizer", values["optimizer"], _OPTIMIZER_TYPES, _make_optimizer)
    if values["loss"] is None:
        values["loss"] = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    check_from_logits(values["loss"])
    if values["losses"] is not None:
        _check_factory("losses", values["losses"], (list, tuple, keras.layers.Layer), _make_losses)
    if values["alpha"] is not None:
        values["alpha"] = check_fraction("alpha", values["alpha"], "[0, 1]")
    callbacks = values["callbacks"]
    if callbacks is not None and not callable(callbacks):
        callbacks = values["callbacks"] = list(callbacks)
        if not all(isinstance(c, keras.callbacks.Callback) for c in callbacks):
            raise ValueError(
                f"callbacks must be Keras callbacks, received: callbacks={callbacks!r}"
            )
    verbose = values["verbose"]
    if verbose not in (0, 1, 2, "auto") or isinstance(verbose, bool):
        raise ValueError(f'verbose must be 0, 1, 2 or "auto", received: verbose={verbose!r}')
    return Settings(train=train, validation_data=validation_data, **values)


def _check_factory(name, value, instance_types, make):
    """Makes one ``value`` (failing early on a bad one); a factory must return new objects."""
    make(value)
    if callable(value) and not isinstance(value, instance_types):
        first, second = make(value), make(value)
        if first is second or (
            isinstance(first, list) and set(map(id, first)) & set(map(id, second))
        ):
            raise ValueError(
                f"{name} must return new objects on each call (each model needs its own), but it "
                f"returned the same instance twice: {name}={value!r}"
            )


def _make_losses(losses):
    """New distillation loss layers: a factory's list, else copies of the layers from configs."""
    if callable(losses) and not isinstance(losses, keras.layers.Layer):
        made = losses()
        if isinstance(made, keras.layers.Layer):
            made = [made]
        if not isinstance(made, (list, tuple)):
            raise ValueError(
                f"losses must return a list of loss layers when called, but it returned {made!r}: "
                f"losses={losses!r}"
            )
        return check_losses(made)
    if not isinstance(losses, (list, tuple, keras.layers.Layer)):
        raise ValueError(
            "losses must be a list of distillation loss layers or a callable returning one, "
            f"received: losses={losses!r}"
        )
    copies = []
    for layer in check_losses(losses):
        try:
            copies.append(type(layer).from_config(layer.get_config()))
        except Exception as error:  # a custom layer whose get_config misses an argument
            raise ValueError(
                f"losses[{len(copies)}] {layer.name!r} cannot be copied from its get_config() "
                f"({error}); each model needs its own loss layers, so pass a callable returning "
                f"new ones, received: losses={[loss.name for loss in losses]!r}"
            ) from None
    return copies


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
            f"received: {name}={reprlib.repr(data)}"
        )
    x, y = data
    leaves = list(x.values()) if isinstance(x, dict) else [x]
    lengths = [np.shape(leaf)[0] if np.ndim(leaf) else 0 for leaf in leaves + [y]]
    if not lengths[-1] or len(set(lengths)) != 1:
        raise ValueError(
            f"{name} must hold x and y of equal, non-zero length, received: "
            f"{name}=<arrays of lengths {lengths}> (x first, y last)"
        )


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
        check_logits_model(label, model)
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


def make(make_model, label):
    """Calls ``make_model()`` after checking it is callable; checks that it made a Keras model."""
    if not callable(make_model):
        raise ValueError(
            "make_model must be a callable returning a new keras.Model, received: "
            f"make_model={make_model!r}"
        )
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
