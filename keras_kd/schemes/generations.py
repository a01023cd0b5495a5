"""Schemes that distill model after model: born-again networks, teacher assistants, refinery."""

import math
import typing

from absl import logging

from keras_kd._checks import check_alpha
from keras_kd._compat import keras, tf
from keras_kd.losses.base import validate_positive
from keras_kd.losses.logits import LogitsKD
from keras_kd.schemes import _training


@keras.utils.register_keras_serializable(package="keras_kd")
class AverageProbabilities(keras.layers.Layer):
    """Averages the softmax probabilities of several logits tensors and returns their logarithm.

    ``log(mean_i softmax(logits_i))`` is itself a valid logits tensor: its softmax is the averaged
    probabilities, and its argmax is the ensemble's vote. So an ensemble built with this layer is
    evaluated with ``SparseCategoricalCrossentropy(from_logits=True)`` and can teach a Distiller.

    Paper: Furlanello, Lipton, Tschannen, Itti & Anandkumar (2018), "Born Again Neural Networks"
    (ensembles of born-again generations).

    Args:
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, ``dtype``).

    Example:
        >>> logits = AverageProbabilities()([model_a(inputs), model_b(inputs)])
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, inputs):
        log_probs = tf.stack([tf.nn.log_softmax(tf.cast(z, tf.float32), axis=-1) for z in inputs])
        return tf.reduce_logsumexp(log_probs, axis=0) - math.log(len(inputs))

    def get_config(self):
        return super().get_config()


class BornAgainResult(typing.NamedTuple):
    """What ``born_again`` returns.

    Attributes:
        generations: The trained generations, first (taught by the teacher) to last.
        ensemble: One functional ``keras.Model`` averaging the generations' probabilities (see
            ``AverageProbabilities``); it outputs logits, evaluates and saves like any model.
        histories: One ``fit`` history dict per generation.
    """

    generations: list
    ensemble: keras.Model
    histories: list


def born_again(
    make_model,
    teacher,
    generations,
    train,
    *,
    alpha=0.0,
    temperature=4.0,
    epochs=10,
    optimizer="adam",
    loss=None,
    batch_size=64,
    validation_data=None,
    callbacks=None,
    verbose=0,
):
    """Born-again networks: each generation, a fresh ``make_model()``, learns from the previous.

    Generation 1 learns from ``teacher``; generation ``k`` from generation ``k - 1``, each with a
    ``keras_kd.Distiller`` and ``keras_kd.losses.LogitsKD``. With the default ``alpha=0`` a
    generation learns from its predecessor's outputs alone, the born-again objective; ``alpha > 0``
    adds the labels. All generations are made (and checked) before any trains.

    Paper: Furlanello, Lipton, Tschannen, Itti & Anandkumar (2018), "Born Again Neural Networks".

    Args:
        make_model: A callable returning a new, built Keras model (logits out) on each call.
        teacher: The trained model that teaches generation 1 (usually of the same architecture).
        generations: Number of generations to train, an integer >= 1.
        train: A ``tf.data.Dataset`` of ``(x, y)`` batches or an ``(x, y)`` tuple of arrays.
        alpha: Weight of the hard-label loss in [0, 1].
        temperature: Temperature > 0 of ``LogitsKD``.
        epochs, optimizer, loss, batch_size, validation_data, callbacks, verbose: The common
            training arguments (see ``keras_kd.schemes``), for each generation.

    Returns:
        A ``BornAgainResult`` ``(generations, ensemble, histories)``. The ensemble averages the
        generations' softmax probabilities and outputs their logarithm (``AverageProbabilities``).

    Raises:
        ValueError: If ``generations`` < 1, ``make_model`` is not callable or returns anything but a
            new Keras model, output shapes differ (models and shapes named), or another argument is
            malformed; always before training.

    Example:
        >>> result = born_again(lambda: make_student((8, 8, 1), 10), teacher, 2, (x_train, y_train))
        >>> result.ensemble.compile(
        ...     loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ...     metrics=["accuracy"])
        >>> result.ensemble.evaluate(x_test, y_test)
    """
    run = _training.settings(
        train, epochs, optimizer, loss, batch_size, validation_data, callbacks, verbose
    )
    _training.check_count("generations", generations)
    _training.check_make_model(make_model)
    alpha = check_alpha(alpha)
    temperature = validate_positive("temperature", temperature)
    models = [_training.make(make_model, f"generation {k + 1}") for k in range(generations)]
    labeled = [(f"generation {k + 1}", m) for k, m in enumerate(models)]
    _training.check_models("generation", [("teacher", teacher), *labeled])
    histories = []
    previous = teacher
    for k, model in enumerate(models):
        logging.info("keras_kd: born-again generation %d of %d", k + 1, generations)
        histories.append(_training.distill(run, previous, model, [LogitsKD(temperature)], alpha))
        previous = model
    return BornAgainResult(models, ensemble(models), histories)


def ensemble(models, name="ensemble"):
    """One functional model averaging the probabilities of ``models`` (``AverageProbabilities``).

    Graph models (Functional, Sequential) enter as renamed views sharing their layers and weights,
    so models that share a name (e.g. every ``make_model()`` output) can sit in one ensemble.

    Args:
        models: Built Keras models with one input of the same shape, logits over the same classes.
        name: Name of the ensemble model.

    Returns:
        A functional ``keras.Model`` whose output is the log of the averaged probabilities.

    Raises:
        ValueError: If ``models`` is empty or a model is missing, unbuilt or not a Keras model.

    Example:
        >>> both = ensemble([model_a, model_b])
    """
    if isinstance(models, keras.Model) or not isinstance(models, (list, tuple)) or not models:
        raise ValueError(
            f"models must be a non-empty list of Keras models, received: models={models!r}"
        )
    _training.check_models("models", [(None, m) for m in models])
    inputs = keras.Input(models[0].input_shape[1:], name=f"{name}_input")
    outputs = []
    for k, model in enumerate(models):
        if getattr(model, "_is_graph_network", False):
            model = keras.Model(model.inputs, model.outputs, name=f"{name}_member{k + 1}")
        outputs.append(model(inputs))
    return keras.Model(inputs, AverageProbabilities(name=f"{name}_average")(outputs), name=name)


class ChainResult(typing.NamedTuple):
    """What ``teacher_assistant`` returns.

    Attributes:
        student: The trained student.
        assistants: The trained assistants, in chain order.
        histories: One ``fit`` history dict per link: the assistants' then the student's.
    """

    student: keras.Model
    assistants: list
    histories: list


def teacher_assistant(
    teacher,
    assistants,
    student,
    train,
    *,
    alpha=0.1,
    temperature=4.0,
    epochs=10,
    optimizer="adam",
    loss=None,
    batch_size=64,
    validation_data=None,
    callbacks=None,
    verbose=0,
):
    """Teacher-assistant KD: distills teacher -> assistants[0] -> ... -> student, in that order.

    Each link is a ``keras_kd.Distiller`` with ``keras_kd.losses.LogitsKD`` whose teacher is the
    model trained by the previous link. Intermediate-size assistants bridge a capacity gap that
    plain KD from a much larger teacher handles poorly.

    Paper: Mirzadeh, Farajtabar, Li, Levine, Matsukawa & Ghasemzadeh (2020), "Improved Knowledge
    Distillation via Teacher Assistant".

    Args:
        teacher: The trained teacher.
        assistants: One or more models, largest first; each is trained in place.
        student: The final model, trained in place.
        train: A ``tf.data.Dataset`` of ``(x, y)`` batches or an ``(x, y)`` tuple of arrays.
        alpha: Weight of the hard-label loss in [0, 1] (0.1 as in Hinton et al.).
        temperature: Temperature > 0 of ``LogitsKD``.
        epochs, optimizer, loss, batch_size, validation_data, callbacks, verbose: The common
            training arguments (see ``keras_kd.schemes``), for each link.

    Returns:
        A ``ChainResult`` ``(student, assistants, histories)``.

    Raises:
        ValueError: If ``assistants`` is empty, a model repeats or is unbuilt, output shapes differ
            (models and shapes named), or another argument is malformed; always before training.

    Example:
        >>> result = teacher_assistant(teacher, [assistant], student, (x_train, y_train), epochs=5)
    """
    run = _training.settings(
        train, epochs, optimizer, loss, batch_size, validation_data, callbacks, verbose
    )
    if isinstance(assistants, keras.Model):
        assistants = [assistants]
    assistants = list(assistants or [])
    if not assistants:
        raise ValueError(
            "assistants must hold at least one model between teacher and student (for plain KD use "
            "keras_kd.Distiller), received: assistants=[]"
        )
    alpha = check_alpha(alpha)
    temperature = validate_positive("temperature", temperature)
    chain = [("teacher", teacher)] + [(f"assistants[{i}]", a) for i, a in enumerate(assistants)]
    _training.check_models("chain", chain + [("student", student)])
    histories = []
    for (_, previous), (label, model) in zip(chain, chain[1:] + [("student", student)]):
        logging.info("keras_kd: teacher-assistant link to %s", label)
        histories.append(_training.distill(run, previous, model, [LogitsKD(temperature)], alpha))
    return ChainResult(student, assistants, histories)


class RefineryResult(typing.NamedTuple):
    """What ``label_refinery`` returns.

    Attributes:
        models: Every trained round's model; ``models[0]`` learned from the labels.
        val_accuracies: Validation accuracy of each round's model.
        best_model: The model with the highest validation accuracy (the earliest on ties).
        best_round: Its index in ``models``.
        histories: One ``fit`` history dict per round.
    """

    models: list
    val_accuracies: list
    best_model: keras.Model
    best_round: int
    histories: list


def label_refinery(
    make_model,
    train,
    val,
    max_rounds=3,
    *,
    alpha=0.0,
    temperature=1.0,
    patience=1,
    epochs=10,
    optimizer="adam",
    loss=None,
    batch_size=64,
    validation_data=None,
    callbacks=None,
    verbose=0,
):
    """Label refinery: each round trains a fresh model on the previous round's soft labels.

    Round 0 trains ``make_model()`` on the labels. Round ``r >= 1`` trains a fresh ``make_model()``
    with a ``keras_kd.Distiller`` whose teacher is round ``r - 1``'s model (``LogitsKD`` at
    ``temperature``; ``alpha=0`` trains on the refined labels alone, as the paper does). After each
    round the model's accuracy on ``val`` is measured; refinement stops when it has not improved on
    the best so far for ``patience`` consecutive rounds, or after ``max_rounds`` refinement rounds.

    Paper: Bagherinezhad, Horton, Rastegari & Farhadi (2018), "Label Refinery: Improving ImageNet
    Classification through Label Progression".

    Args:
        make_model: A callable returning a new, built Keras model (logits out) on each call.
        train: A ``tf.data.Dataset`` of ``(x, y)`` batches or an ``(x, y)`` tuple of arrays.
        val: Data that decides when to stop, in the same forms as ``train``.
        max_rounds: Most refinement rounds after round 0, an integer >= 1.
        alpha: Weight of the hard labels in [0, 1] in the refinement rounds.
        temperature: Temperature > 0 of the refined labels (1: the plain softmax, as in the paper).
        patience: Rounds without improvement before stopping, an integer >= 1.
        epochs, optimizer, loss, batch_size, validation_data, callbacks, verbose: The common
            training arguments (see ``keras_kd.schemes``), for each round.

    Returns:
        A ``RefineryResult`` ``(models, val_accuracies, best_model, best_round, histories)``.

    Raises:
        ValueError: If ``make_model`` is not callable or returns anything but a new Keras model,
            ``max_rounds`` or ``patience`` < 1, output shapes differ, or another argument is
            malformed; before any training (a later round's model is checked before it trains).

    Example:
        >>> result = label_refinery(lambda: make_student((8, 8, 1), 10), (x_train, y_train),
        ...     (x_val, y_val), max_rounds=3)
        >>> result.val_accuracies, result.best_round
    """
    run = _training.settings(
        train, epochs, optimizer, loss, batch_size, validation_data, callbacks, verbose
    )
    _training.check_data("val", val)
    _training.check_count("max_rounds", max_rounds)
    _training.check_count("patience", patience)
    _training.check_make_model(make_model)
    alpha = check_alpha(alpha)
    temperature = validate_positive("temperature", temperature)
    models = [_training.make(make_model, "round 0"), _training.make(make_model, "round 1")]
    _training.check_models("round", [("round 0 model", models[0]), ("round 1 model", models[1])])

    histories = [run.fit(run.compile(models[0]))]
    accuracies = [_training.accuracy(models[0], val, batch_size)]
    logging.info("keras_kd: label refinery round 0 val accuracy %.4f", accuracies[0])
    stale = 0
    for r in range(1, max_rounds + 1):
        if r == len(models):
            models.append(_training.make(make_model, f"round {r}"))
            _training.check_models(
                "round", [("round 0 model", models[0]), (f"round {r} model", models[r])]
            )
        losses = [LogitsKD(temperature, name="refined_labels")]
        histories.append(_training.distill(run, models[r - 1], models[r], losses, alpha))
        accuracies.append(_training.accuracy(models[r], val, batch_size))
        logging.info("keras_kd: label refinery round %d val accuracy %.4f", r, accuracies[r])
        stale = stale + 1 if accuracies[r] <= max(accuracies[:r]) else 0
        if stale >= patience:
            break
    models = models[: len(accuracies)]
    best = max(range(len(accuracies)), key=lambda i: (accuracies[i], -i))
    return RefineryResult(models, accuracies, models[best], best, histories)
