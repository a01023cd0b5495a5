"""Schemes that distill model after model: born-again networks, teacher assistants, refinery."""

from absl import logging

from keras_kd._checks import check_positive_int, is_graph_model
from keras_kd._compat import keras, tf
from keras_kd.losses import _ops
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
        return _ops.log_mean_probabilities([tf.cast(z, tf.float32) for z in inputs])

    def get_config(self):
        return super().get_config()


def born_again(teacher, make_model, train, validation_data=None, *, generations=2, **options):
    """Born-again networks: each generation, a fresh ``make_model()``, learns from the previous.

    Generation 1 learns from ``teacher``; generation ``k`` from generation ``k - 1``, each with a
    ``keras_kd.Distiller`` and its measured default losses and ``alpha`` (or the ``losses`` and
    ``alpha`` given; the paper's objective, the predecessor's outputs alone, is
    ``losses=[keras_kd.losses.LogitsKD(1.0)], alpha=0``). All generations are made (and checked)
    before any trains. The result's ``ensemble`` averages the generations' probabilities.

    Paper: Furlanello, Lipton, Tschannen, Itti & Anandkumar (2018), "Born Again Neural Networks".

    Args:
        teacher: The trained model that teaches generation 1 (usually of the same architecture).
        make_model: A callable returning a new, built Keras model (logits out) on each call.
        train: A ``tf.data.Dataset`` of ``(x, y)`` batches or an ``(x, y)`` tuple of arrays.
        validation_data: ``None`` or data in the same forms, evaluated after each epoch.
        generations: Number of generations to train, an integer >= 1.
        **options: The training options every scheme shares (``keras_kd.schemes``), for each
            generation: ``epochs``, ``batch_size``, ``optimizer``, ``loss``, ``losses``,
            ``alpha``, ``callbacks``, ``verbose``.

    Returns:
        A ``SchemeResult``: ``models`` are the generations, first to last (the student);
        ``extras["ensemble"]`` is one functional ``keras.Model`` averaging their softmax
        probabilities and outputting their logarithm (``AverageProbabilities``): it evaluates,
        saves and can teach like any model.

    Raises:
        ValueError: If ``generations`` < 1, ``make_model`` is not callable or returns anything but a
            new Keras model, output shapes differ (models and shapes named), or another argument is
            malformed; always before training.
        TypeError: If ``teacher`` is not a Keras model, or an option is unknown.

    Example:
        >>> result = born_again(teacher, lambda: make_student((8, 8, 1), 10), (x_train, y_train),
        ...     generations=2, epochs=3)
        >>> result.extras["ensemble"].compile(
        ...     loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ...     metrics=["accuracy"])
        >>> result.extras["ensemble"].evaluate(x_test, y_test)
    """
    _training.check_models("teacher", [("teacher", teacher)])  # first: names a swapped order
    run = _training.settings("born_again", train, validation_data, **options)
    check_positive_int("generations", generations)
    models = [_training.make(make_model, f"generation {k + 1}") for k in range(generations)]
    labeled = [(f"generation {k + 1}", m) for k, m in enumerate(models)]
    _training.check_models("generation", [("teacher", teacher), *labeled])
    histories = []
    previous = teacher
    for k, model in enumerate(models):
        logging.info("keras_kd: born-again generation %d of %d", k + 1, generations)
        histories.append(run.distill(previous, model))
        previous = model
    return _training.SchemeResult(models, histories, {"ensemble": ensemble(models)})


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
        if is_graph_model(model):
            model = keras.Model(model.inputs, model.outputs, name=f"{name}_member{k + 1}")
        outputs.append(model(inputs))
    return keras.Model(inputs, AverageProbabilities(name=f"{name}_average")(outputs), name=name)


def teacher_assistant(teacher, assistants, student, train, validation_data=None, **options):
    """Teacher-assistant KD: distills teacher -> assistants[0] -> ... -> student, in that order.

    Each link is a ``keras_kd.Distiller`` (its measured default losses and ``alpha``, or the
    ``losses`` and ``alpha`` given) whose teacher is the model trained by the previous link.
    Intermediate-size assistants bridge a capacity gap that plain KD from a much larger teacher
    handles poorly.

    Paper: Mirzadeh, Farajtabar, Li, Levine, Matsukawa & Ghasemzadeh (2020), "Improved Knowledge
    Distillation via Teacher Assistant".

    Args:
        teacher: The trained teacher.
        assistants: One or more models, largest first; each is trained in place.
        student: The final model, trained in place.
        train: A ``tf.data.Dataset`` of ``(x, y)`` batches or an ``(x, y)`` tuple of arrays.
        validation_data: ``None`` or data in the same forms, evaluated after each epoch.
        **options: The training options every scheme shares (``keras_kd.schemes``), for each
            link: ``epochs``, ``batch_size``, ``optimizer``, ``loss``, ``losses``, ``alpha``,
            ``callbacks``, ``verbose``.

    Returns:
        A ``SchemeResult``: ``models`` are the assistants then the student, in chain order, with
        one history each.

    Raises:
        ValueError: If ``assistants`` is empty, a model repeats or is unbuilt, output shapes differ
            (models and shapes named), or another argument is malformed; always before training.
        TypeError: If a model is not a Keras model, or an option is unknown.

    Example:
        >>> result = teacher_assistant(teacher, [assistant], student, (x_train, y_train), epochs=5)
        >>> result.student is student
    """
    run = _training.settings("teacher_assistant", train, validation_data, **options)
    if isinstance(assistants, keras.Model):
        assistants = [assistants]
    assistants = list(assistants or [])
    if not assistants:
        raise ValueError(
            "assistants must hold at least one model between teacher and student (for plain KD use "
            "keras_kd.Distiller), received: assistants=[]"
        )
    chain = [("teacher", teacher)] + [(f"assistants[{i}]", a) for i, a in enumerate(assistants)]
    _training.check_models("chain", chain + [("student", student)])
    histories = []
    for (_, previous), (label, model) in zip(chain, chain[1:] + [("student", student)]):
        logging.info("keras_kd: teacher-assistant link to %s", label)
        histories.append(run.distill(previous, model))
    return _training.SchemeResult([*assistants, student], histories)


def label_refinery(make_model, train, validation_data=None, *, max_rounds=3, patience=1, **options):
    """Label refinery: each round trains a fresh model on the previous round's soft labels.

    Round 0 trains ``make_model()`` on the labels. Round ``r >= 1`` trains a fresh ``make_model()``
    with a ``keras_kd.Distiller`` whose teacher is round ``r - 1``'s model (its measured default
    losses and ``alpha``, or the ``losses`` and ``alpha`` given; the paper's refined labels alone
    are ``losses=[keras_kd.losses.LogitsKD(1.0)], alpha=0``). After each round the model's
    accuracy on ``validation_data`` is measured; refinement stops when it has not improved on the
    best so far for ``patience`` consecutive rounds, or after ``max_rounds`` refinement rounds.

    Paper: Bagherinezhad, Horton, Rastegari & Farhadi (2018), "Label Refinery: Improving ImageNet
    Classification through Label Progression".

    Args:
        make_model: A callable returning a new, built Keras model (logits out) on each call.
        train: A ``tf.data.Dataset`` of ``(x, y)`` batches or an ``(x, y)`` tuple of arrays.
        validation_data: Data in the same forms that decides when to stop (required); also
            evaluated after each epoch.
        max_rounds: Most refinement rounds after round 0, an integer >= 1.
        patience: Rounds without improvement before stopping, an integer >= 1.
        **options: The training options every scheme shares (``keras_kd.schemes``), for each
            round: ``epochs``, ``batch_size``, ``optimizer``, ``loss``, ``losses``, ``alpha``,
            ``callbacks``, ``verbose``.

    Returns:
        A ``SchemeResult``: ``models`` are the rounds trained (``models[0]`` learned from the
        labels), one history each; the student is the round with the highest validation accuracy
        (the earliest on ties), ``extras["best_round"]``; ``extras["val_accuracies"]`` holds each
        round's validation accuracy.

    Raises:
        ValueError: If ``validation_data`` is missing, ``make_model`` is not callable or returns
            anything but a new Keras model, ``max_rounds`` or ``patience`` < 1, output shapes
            differ, or another argument is malformed; before any training (a later round's model
            is checked before it trains).
        TypeError: If an option is unknown.

    Example:
        >>> result = label_refinery(lambda: make_student((8, 8, 1), 10), (x_train, y_train),
        ...     (x_val, y_val), max_rounds=3)
        >>> result.extras["val_accuracies"], result.student
    """
    run = _training.settings("label_refinery", train, validation_data, **options)
    if validation_data is None:
        raise ValueError(
            "validation_data is required: it decides when refinement stops, received: "
            "validation_data=None"
        )
    check_positive_int("max_rounds", max_rounds)
    check_positive_int("patience", patience)
    models = [_training.make(make_model, "round 0"), _training.make(make_model, "round 1")]
    _training.check_models("round", [("round 0 model", models[0]), ("round 1 model", models[1])])

    histories = [run.fit(run.compile(models[0]))]
    accuracies = [_training.accuracy(models[0], validation_data, run.batch_size)]
    logging.info("keras_kd: label refinery round 0 val accuracy %.4f", accuracies[0])
    stale = 0
    for r in range(1, max_rounds + 1):
        if r == len(models):
            models.append(_training.make(make_model, f"round {r}"))
            _training.check_models(
                "round", [("round 0 model", models[0]), (f"round {r} model", models[r])]
            )
        histories.append(run.distill(models[r - 1], models[r]))
        accuracies.append(_training.accuracy(models[r], validation_data, run.batch_size))
        logging.info("keras_kd: label refinery round %d val accuracy %.4f", r, accuracies[r])
        stale = stale + 1 if accuracies[r] <= max(accuracies[:r]) else 0
        if stale >= patience:
            break
    models = models[: len(accuracies)]
    best = max(range(len(accuracies)), key=lambda i: (accuracies[i], -i))
    extras = {"val_accuracies": accuracies, "best_round": best}
    return _training.SchemeResult(models, histories, extras, student_index=best)
