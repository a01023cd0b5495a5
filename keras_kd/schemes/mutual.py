"""Deep mutual learning: a cohort of students that teach each other while they train together."""

from keras_kd._checks import check_fraction, check_positive
from keras_kd._compat import keras, tf
from keras_kd._distiller_checks import check_from_logits
from keras_kd.losses.base import LogitLoss
from keras_kd.losses.logits import LogitsKD
from keras_kd.schemes import _training
from keras_kd.training_step import StepOutputs, TrainingStep

PEER_TARGETS = ("each", "mean")
# Measured defaults of the peer term: README "Results", "Training schemes".
DEFAULT_ALPHA = 0.5
DEFAULT_TEMPERATURE = 1.0


@keras.utils.register_keras_serializable(package="keras_kd")
class MutualLearner(TrainingStep):
    """Trains a cohort of models together, each from the labels and from the others' predictions.

    Each step runs every cohort model once on the batch and minimizes, for each model ``k``,

        loss_k = alpha * hard_loss(y, logits_k) + (1 - alpha) * mimicry_k + regularization_k

    where ``mimicry_k`` is, with ``peer_target="each"`` (the paper's cohort loss), the mean over the
    other models ``l`` of ``KL(p_l || p_k)``, or with ``peer_target="mean"`` (the paper's ensemble
    variant) ``KL(mean_l p_l || p_k)``; ``p`` are softmax outputs at ``temperature`` and each KL is
    multiplied by ``temperature**2`` (the ``mimicry`` loss, by default
    ``keras_kd.losses.LogitsKD(temperature)``; another logit loss may replace it, and then compares
    the model with each peer, or with the peers' ensemble, ``mimicry.ensemble(peers)``). The peers' predictions are
    targets: no gradient flows through them, so the gradient of the summed loss with respect to
    model ``k``'s weights is the gradient of ``loss_k``. All models update at once from the same
    step's predictions, with one optimizer over all their variables (Adam and the like keep
    per-variable state, so this equals one optimizer per model). The paper's Algorithm 1
    recomputes each model's predictions between the updates; the simultaneous update is the common
    implementation and runs each model once per step. With the defaults, ``alpha=0.5`` and
    ``temperature=1`` (``DEFAULT_ALPHA``, ``DEFAULT_TEMPERATURE``; measured in README "Results",
    "Training schemes": T=4 did no better, alpha 0.1 and 0.9 worse at 10 epochs), the loss is the
    paper's ``CE + KL`` halved.

    ``fit`` and ``evaluate`` report ``loss`` (the sum over models) and, per model ``i``,
    ``model{i}_loss``, ``model{i}_hard_loss``, ``model{i}_mimicry`` and ``model{i}_accuracy``
    (``evaluate`` reports the hard loss and accuracy only). ``call`` returns the list of the
    cohort's logits.

    Paper: Zhang, Xiang, Hospedales & Lu (2018), "Deep Mutual Learning".

    Args:
        models: Two or more built Keras models that output logits over the same classes.
        alpha: Weight of the hard-label loss, in [0, 1]; the mimicry loss gets ``1 - alpha``.
            ``None``: ``DEFAULT_ALPHA`` (0.5).
        temperature: Softening temperature > 0 of the predictions compared; ``None``:
            ``DEFAULT_TEMPERATURE`` (1, as in the paper). Not with ``mimicry``, which has its own.
        peer_target: ``"each"`` (mean of the KL terms to each peer) or ``"mean"`` (KL to the mean of
            the peers' probabilities). Equal for a cohort of two.
        mimicry: ``None`` (``LogitsKD(temperature)``), or a ``keras_kd.losses.LogitLoss`` on one
            teacher's logits, without labels, used as the peer term.
        **kwargs: Passed to ``keras.Model`` (``name``).

    Raises:
        ValueError: If there are fewer than two models, a model is unbuilt or repeated, output
            shapes differ (models and shapes named), an argument is out of range, ``mimicry`` is
            not a logit loss on one teacher, or both ``temperature`` and ``mimicry`` are given.
        TypeError: If a model is not a ``keras.Model``.

    Example:
        >>> learner = MutualLearner([make_student(), make_student()])
        >>> learner.compile(optimizer="adam",
        ...     loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> history = learner.fit(x_train, y_train, epochs=5)
    """

    def __init__(
        self, models, alpha=None, temperature=None, peer_target="each", mimicry=None, **kwargs
    ):
        kwargs.setdefault("name", "mutual_learner")
        super().__init__(**kwargs)
        models = check_cohort(models)
        self.cohort = models
        self.alpha = check_fraction("alpha", DEFAULT_ALPHA if alpha is None else alpha, "[0, 1]")
        if peer_target not in PEER_TARGETS:
            raise ValueError(
                f"peer_target must be one of {PEER_TARGETS}, received: peer_target={peer_target!r}"
            )
        self.peer_target = peer_target
        self._custom_mimicry = mimicry is not None
        if mimicry is None:
            temperature = DEFAULT_TEMPERATURE if temperature is None else temperature
            self.temperature = check_positive("temperature", temperature)
            mimicry = LogitsKD(self.temperature, name="mimicry")
        elif temperature is not None:
            raise ValueError(
                "temperature belongs to the mimicry loss when one is given; pass one or the other, "
                f"received: temperature={temperature!r}, mimicry={getattr(mimicry, 'name', mimicry)!r}"
            )
        else:
            _check_logit_loss(mimicry)
            self.temperature = float(mimicry.temperature)
        self.mimicry = mimicry
        names = [f"model{i}" for i in range(len(models))]
        parts = ("loss", "hard_loss", "mimicry")
        self._track(terms=[f"{n}_{part}" for n in names for part in parts], scored=names)
        self.built = True

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        """Configures training; ``loss`` is the hard-label loss on logits.

        Args:
            optimizer: A Keras optimizer or its name; one optimizer updates every cohort model.
            loss: The hard-label loss, default ``SparseCategoricalCrossentropy(from_logits=True)``.
            **kwargs: Passed to ``keras.Model.compile`` (``jit_compile``, ``steps_per_execution``).
                ``metrics`` is not accepted: each model's accuracy is always reported.

        Raises:
            ValueError: If ``loss`` expects probabilities, or ``metrics`` is given.
        """
        if loss is None:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        check_from_logits(loss)
        if kwargs.get("metrics"):
            raise ValueError(
                "MutualLearner reports each model's accuracy itself and takes no other metrics, "
                f"received: metrics={kwargs['metrics']!r}"
            )
        kwargs.pop("metrics", None)
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def compile_from_config(self, config):
        """Recompiles from ``get_compile_config()`` when a saved learner is loaded."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        self.optimizer.build(self._step_variables())

    def call(self, inputs, training=None):
        return [model(inputs, training=training) for model in self.cohort]

    def cohort_losses(self, y, logits, sample_weight=None):
        """Per-model ``(hard_loss, mimicry)`` scalars for the cohort's ``logits`` on labels ``y``.

        Args:
            y: Labels, as the hard-label loss expects them.
            logits: One logits tensor per cohort model.
            sample_weight: Optional per-example weights of the hard loss.

        Returns:
            A list of ``(hard_loss, mimicry)`` pairs of float32 scalars, one per model.
        """
        targets = [tf.stop_gradient(tf.cast(z, tf.float32)) for z in logits]
        result = []
        for k, own in enumerate(logits):
            own = tf.cast(own, tf.float32)
            peers = [t for i, t in enumerate(targets) if i != k]
            if self.peer_target == "each":
                mimicry = tf.add_n([self.mimicry(peer, own) for peer in peers]) / len(peers)
            else:
                mimicry = self.mimicry(self.mimicry.ensemble(peers), own)
            result.append((self.hard_term(y, own, sample_weight), mimicry))
        return result

    def _step_terms(self, x, y, sample_weight, targets, training):
        logits = [model(x, training=training) for model in self.cohort]
        scored = {f"model{i}": z for i, z in enumerate(logits)}
        if not training:
            terms = [(f"model{i}_hard_loss", 1.0, self.hard_term(y, z, sample_weight))
                     for i, z in enumerate(logits)]  # fmt: skip
            return StepOutputs(terms, None, scored)
        terms = []
        for i, (model, (hard, mimicry)) in enumerate(
            zip(self.cohort, self.cohort_losses(y, logits, sample_weight))
        ):
            own = self.alpha * hard + (1.0 - self.alpha) * mimicry
            if model.losses:
                own += tf.cast(tf.add_n(model.losses), tf.float32)
            terms.append((f"model{i}_loss", 0.0, own))  # reported; its parts are in the total
            terms.append((f"model{i}_hard_loss", self.alpha, hard))
            terms.append((f"model{i}_mimicry", 1.0 - self.alpha, mimicry))
        return StepOutputs(terms, None, scored)

    _variables_exist_before_fit = True  # built models, and no loss layers of its own

    def _step_variables(self):
        return [v for model in self.cohort for v in model.trainable_variables]

    def _step_regularization(self):
        return [loss for model in self.cohort for loss in model.losses]

    def _guarded_layers(self):
        return list(self.cohort)

    def get_config(self):
        return {
            "name": self.name,
            "models": [keras.saving.serialize_keras_object(m) for m in self.cohort],
            "alpha": self.alpha,
            "temperature": None if self._custom_mimicry else self.temperature,
            "peer_target": self.peer_target,
            "mimicry": (
                keras.saving.serialize_keras_object(self.mimicry) if self._custom_mimicry else None
            ),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["models"] = [
            keras.saving.deserialize_keras_object(m, custom_objects=custom_objects)
            for m in config["models"]
        ]
        if config.get("mimicry") is not None:
            config["mimicry"] = keras.saving.deserialize_keras_object(
                config["mimicry"], custom_objects=custom_objects
            )
        return cls(**config)


def mutual_learning(models, train, validation_data=None, *, peer_target="each", **options):
    """Deep mutual learning: trains a cohort of two or more models together in one training loop.

    See ``MutualLearner`` for the loss. Each model's weights are updated in place. The peer term is
    the paper's own method, not a Distiller's: ``losses=None`` and ``alpha=None`` mean its measured
    defaults, ``LogitsKD(temperature=DEFAULT_TEMPERATURE)`` and ``alpha=DEFAULT_ALPHA``
    (``keras_kd.schemes.mutual``); ``losses`` may hold one other logit loss for the peer term.

    Paper: Zhang, Xiang, Hospedales & Lu (2018), "Deep Mutual Learning".

    Args:
        models: Two or more built Keras models that output logits over the same classes.
        train: A ``tf.data.Dataset`` of ``(x, y)`` batches or an ``(x, y)`` tuple of arrays.
        validation_data: ``None`` or data in the same forms, evaluated after each epoch.
        peer_target: ``"each"`` or ``"mean"`` (see ``MutualLearner``).
        **options: The training options every scheme shares (``keras_kd.schemes``):
            ``epochs``, ``batch_size``, ``optimizer`` (one optimizer updates all models),
            ``loss``, ``losses`` (one logit loss: the peer term), ``alpha``, ``callbacks``,
            ``verbose``.

    Returns:
        A ``SchemeResult``: ``models`` is the cohort in the order given, ``histories[i]`` model
        ``i``'s ``loss``, ``hard_loss``, ``mimicry`` and ``accuracy`` per epoch (``val_`` too);
        ``extras["learner"]`` is the ``MutualLearner`` (evaluate it for every model at once) and
        ``extras["history"]`` its joint log (``loss`` summed over models, ``model{i}_...``).

    Raises:
        ValueError: For an empty cohort, fewer than two models, mismatched output shapes,
            ``losses`` other than one logit loss, or any malformed argument; always before
            training.
        TypeError: If a model is not a Keras model, or an option is unknown.

    Example:
        >>> result = mutual_learning([make_student(), make_student()], (x_train, y_train), epochs=5)
        >>> result.histories[0]["accuracy"][-1]
    """
    run = _training.settings("mutual_learning", train, validation_data, **options)
    losses = run.new_losses()
    if losses is not None and len(losses) != 1:
        raise ValueError(
            "losses must hold one logit loss in mutual_learning (the peer term), received: "
            f"losses={[loss.name for loss in losses]!r}"
        )
    learner = MutualLearner(
        models, alpha=run.alpha, peer_target=peer_target, mimicry=losses and losses[0]
    )
    learner.compile(optimizer=run.new_optimizer(), loss=run.loss)
    history = run.fit(learner)
    cohort = list(learner.cohort)
    histories = [_model_history(history, i) for i in range(len(cohort))]
    return _training.SchemeResult(cohort, histories, {"learner": learner, "history": history})


def _model_history(history, index):
    """Model ``index``'s part of a ``MutualLearner`` log, without the ``model{index}_`` prefix."""
    own = {}
    for prefix in ("", "val_"):
        start = f"{prefix}model{index}_"
        own.update({prefix + k[len(start) :]: v for k, v in history.items() if k.startswith(start)})
    return own


def _check_logit_loss(mimicry):
    """Raises ``ValueError`` unless ``mimicry`` is a ``LogitLoss`` on one teacher, without labels."""
    if not isinstance(mimicry, LogitLoss) or mimicry.multi_teacher or mimicry.uses_labels:
        raise ValueError(
            "mimicry must be a keras_kd.losses.LogitLoss on one teacher's logits, without labels "
            f"(e.g. keras_kd.losses.LogitsKD), received: mimicry={getattr(mimicry, 'name', mimicry)!r}"
        )


def check_cohort(models):
    """Returns ``models`` as a list after checking it is a valid cohort (see ``MutualLearner``)."""
    if isinstance(models, keras.Model) or models is None:
        raise ValueError(
            f"models must be a list of two or more Keras models, received: models={models!r}"
        )
    models = list(models)
    if not models:
        raise ValueError(
            "models must hold two or more Keras models, received an empty cohort: models=[]"
        )
    if len(models) < 2:
        raise ValueError(
            "models must hold two or more Keras models (a cohort learns from its peers), "
            "received: "
            f"models={[m.name if isinstance(m, keras.Model) else m for m in models]!r} (1 model)"
        )
    _training.check_models("models", [(None, m) for m in models])
    return models
