"""The one training step of keras_kd's models: the Distiller, mutual learning, early exits, slimmable.

``TrainingStep`` is a ``keras.Model`` whose ``train_step`` and ``test_step`` every keras_kd model
that trains shares. A subclass says what its loss is made of; the step does the rest the same way
for all of them:

- the loss is a weighted sum of named terms (``_step_terms``), each checked for NaN and Inf;
- the hard-label loss (``hard_term``) averages the compiled loss over labeled rows only (label -1,
  or an all-zero one-hot row, marks an unlabeled example);
- regularization losses are added once, and the total is scaled for the replicas of a distribution
  strategy, while every reported value is a per-example mean;
- the update goes through the non-finite guard (``keras_kd.nonfinite.NonFiniteGuard``): a NaN or
  Inf term or gradient applies nothing and ``fit`` raises ``FloatingPointError``;
- ``fit`` adds the callbacks the trained models need (``keras_kd.model_callbacks``, e.g. tfmot's
  pruning step for a pruned model);
- metrics: ``loss``, one mean per term, the compiled metrics on the main logits and an accuracy
  per scored output, each over labeled rows;
- ``fit`` makes the optimizer's slots and the compiled metrics before the step is traced, so that
  ``tf.function`` traces it once, not twice.

A subclass implements ``_step_terms`` and may override ``_step_inputs`` (work outside the gradient
tape, such as a teacher's pass), ``_step_variables``, ``_step_regularization``,
``_guarded_layers`` and, for the single trace, ``_logits_shape`` and
``_variables_exist_before_fit``.
"""

import collections

from keras_kd import _labels, model_callbacks, nonfinite
from keras_kd._checks import is_graph_model
from keras_kd._compat import keras, tf

__all__ = ["StepOutputs", "TrainingStep", "build_before_fit"]

StepOutputs = collections.namedtuple("StepOutputs", ["terms", "logits", "scored"], defaults=[{}])
StepOutputs.__doc__ = """What a model's loss is made of in one step (``TrainingStep._step_terms``).

Args:
    terms: A list of ``(name, weight, value)``: ``value`` a float scalar (a per-example mean),
        ``weight`` its weight in the total (0 reports it without adding it), ``name`` its metric
        (``None``: added, not reported on its own).
    logits: The main logits, which the compiled metrics score, or ``None``.
    scored: ``{name: logits}`` of outputs whose accuracy is reported as ``<name>_accuracy``.
"""


class TrainingStep(keras.Model):
    """The base of every keras_kd model that trains: one ``train_step``, one ``test_step``.

    See the module docstring for what the step does. Subclasses name their terms and scored
    outputs once in their ``__init__`` with ``_track`` (their metrics are created there) and
    implement ``_step_terms``.

    Paper: Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network" (the
    weighted sum of a hard-label loss and distillation terms that every subclass minimizes).

    Args:
        **kwargs: Passed to ``keras.Model`` (``name``).

    Example:
        >>> class Plain(TrainingStep):
        ...     def __init__(self, model):
        ...         super().__init__()
        ...         self.model = model
        ...         self._track(terms=["hard_loss"])
        ...     def _step_terms(self, x, y, sample_weight, targets, training):
        ...         logits = self.model(x, training=training)
        ...         hard = self.hard_term(y, logits, sample_weight)
        ...         return StepOutputs([("hard_loss", 1.0, hard)], logits)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.nonfinite_guard = nonfinite.NonFiniteGuard()  # not trackable: no weights of ours
        self._loss_tracker = keras.metrics.Mean(name="loss")
        self._term_trackers = {}
        self._accuracy_trackers = {}

    def _track(self, terms=(), scored=()):
        """Creates the metrics of the terms and scored outputs, in the order they are logged.

        Args:
            terms: Names of the reported loss terms.
            scored: Names of the outputs whose accuracy is logged as ``<name>_accuracy``.
        """
        for name in terms:
            self._term_trackers[name] = keras.metrics.Mean(name=name)
        for name in scored:
            self._accuracy_trackers[name] = keras.metrics.Mean(name=f"{name}_accuracy")

    @property
    def metrics(self):
        compiled = getattr(self, "compiled_metrics", None)
        extra = compiled.metrics if compiled is not None else []
        trackers = [*self._term_trackers.values(), *self._accuracy_trackers.values()]
        return [self._loss_tracker, *trackers, *extra]

    def _step_inputs(self, x, training):
        """Work outside the gradient tape: returns ``(x, targets)`` for ``_step_terms``."""
        return x, None

    def _step_terms(self, x, y, sample_weight, targets, training):
        """The forward pass and the loss terms of one batch, as ``StepOutputs``."""
        raise NotImplementedError(f"{type(self).__name__} must implement _step_terms")

    def _step_variables(self):
        """The variables the optimizer updates."""
        return self.trainable_variables

    def _step_regularization(self):
        """The regularization losses added to the total."""
        return self.losses

    def _guarded_layers(self):
        """The layers whose forward-pass state the non-finite guard restores after a failure."""
        return [self]

    def hard_term(self, y, logits, sample_weight=None):
        """The compiled loss on ``logits``, averaged over the labeled rows, as a per-example mean.

        Args:
            y: Labels (class ids, -1 for none, or one-hot rows, all-zero for none).
            logits: The logits scored.
            sample_weight: Optional per-example weights.

        Returns:
            A float32 scalar.
        """
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return _labels.hard_loss(self.compiled_loss, y, logits, sample_weight) * replicas

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, targets = self._step_inputs(x, training=True)
        with tf.GradientTape() as tape:
            outputs = self._step_terms(x, y, sample_weight, targets, training=True)
            total, report = self._total(outputs.terms)
        self.nonfinite_guard.minimize(self.optimizer, total, self._step_variables(), tape)
        return self._update_metrics(y, sample_weight, outputs, report)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, targets = self._step_inputs(x, training=False)
        outputs = self._step_terms(x, y, sample_weight, targets, training=False)
        return self._update_metrics(y, sample_weight, outputs, self._total(outputs.terms)[1])

    def _total(self, terms):
        """Returns the replica-scaled total to differentiate and the per-example values to report."""
        report = {}
        if not terms:
            return tf.constant(0.0), report
        total = tf.constant(0.0)
        for name, weight, value in terms:
            value = nonfinite.check_finite(tf.cast(value, tf.float32), name or "loss")
            if name is not None:
                report[name] = value
            if weight:
                total += weight * value
        regularization = self._step_regularization()
        if regularization:
            regularization = tf.cast(tf.add_n(regularization), tf.float32)
            total += nonfinite.check_finite(regularization, "regularization")
        report["loss"] = total
        return total / tf.distribute.get_strategy().num_replicas_in_sync, report

    def _update_metrics(self, y, sample_weight, outputs, report):
        # Batch means weighted by batch size, as Keras does, so that epoch values are example means.
        logs = {}
        if "loss" in report:
            self._loss_tracker.update_state(report["loss"], sample_weight=_batch(outputs))
            logs["loss"] = self._loss_tracker.result()
        for name, tracker in self._term_trackers.items():
            if name in report:
                tracker.update_state(report[name], sample_weight=_batch(outputs))
                logs[name] = tracker.result()
        if y is None:
            return logs
        for name, logits in outputs.scored.items():
            correct, weights = _correct(y, logits, sample_weight)
            tracker = self._accuracy_trackers[name]
            tracker.update_state(correct, sample_weight=weights)
            logs[tracker.name] = tracker.result()
        if outputs.logits is not None and self.compiled_metrics is not None:
            # Keras applies sample weights to weighted_metrics only: unlabeled rows are dropped.
            labeled = _labels.labeled_mask(y, outputs.logits) > 0
            if sample_weight is not None:
                sample_weight = tf.boolean_mask(tf.reshape(sample_weight, [-1]), labeled)
            self.compiled_metrics.update_state(
                tf.boolean_mask(y, labeled), tf.boolean_mask(outputs.logits, labeled), sample_weight
            )
            logs.update({m.name: m.result() for m in self.compiled_metrics.metrics})
        return logs

    def fit(self, x=None, y=None, **kwargs):
        """``keras.Model.fit`` under the non-finite guard, with the callbacks the models need.

        Raises:
            FloatingPointError: If a loss term or a gradient becomes NaN or Inf. That step applies
                no update and its forward-pass state (batch-norm statistics, QAT ranges, pruning
                step) is undone without a distribution strategy: the last finite weights remain.
        """
        kwargs["callbacks"] = self._required_callbacks(kwargs.get("callbacks"))
        self._build_before_fit(x, y)
        return self._guarded_fit(x, y, **kwargs)

    # Whether every variable the optimizer updates exists before the first step (no layer of
    # the model or its losses builds on its first call): then its slots can be made up front.
    _variables_exist_before_fit = False

    def _logits_shape(self):
        """The static shape of the main logits (``StepOutputs.logits``), or ``None`` if unknown."""
        return None

    def _build_before_fit(self, x, y):
        """``build_before_fit`` for this model: the optimizer only when its variables all exist."""
        variables = self._step_variables() if self._variables_exist_before_fit else None
        _build(self, x, y, variables, self._logits_shape())

    def _required_callbacks(self, callbacks):
        """``callbacks`` plus those the guarded models require (``keras_kd.model_callbacks``)."""
        for layer in self._guarded_layers():
            callbacks = model_callbacks.add_required_callbacks(layer, callbacks)
        return callbacks

    def _guarded_fit(self, x, y, **kwargs):
        """``keras.Model.fit`` under the non-finite guard."""
        distributed = self._distribution_strategy is not None
        self.nonfinite_guard.watch(*self._guarded_layers(), distributed=distributed)
        with self.nonfinite_guard.stopping():
            return super().fit(x, y, **kwargs)


def build_before_fit(model, x, y=None):
    """Creates a compiled graph model's optimizer slots and compiled metrics before ``fit``.

    ``tf.function`` traces a function a second time when its first trace created variables, and
    Keras makes both lazily in the first step: building them first saves that second trace (a
    Distiller's one-epoch fit on 256 digits, on one core: 0.9 to 1.1 s instead of 1.5 to 2.2 s).
    keras_kd's own models (``TrainingStep.fit``), ``recipes.train_classifier`` and the schemes
    do this themselves; call it before a plain ``fit`` of your own.

    Paper: none (TensorFlow's tracing rule for variables created in a ``tf.function``; Abadi et
    al. 2016, "TensorFlow: A System for Large-Scale Machine Learning").

    Args:
        model: A compiled ``keras.Model``. A functional or Sequential model with an input shape
            is built; for any other (a subclassed model) Keras builds in the first step as
            before.
        x, y: ``fit``'s inputs and labels (arrays, or a dataset of ``(x, y)`` and ``y=None``);
            the labels' shape and dtype choose the compiled metrics (e.g. sparse or categorical
            accuracy), as in Keras's step. Labels of another form leave the metrics to Keras.

    Returns:
        ``model``, its optimizer and metrics built in place.

    Raises:
        ValueError: If ``model`` is not compiled, naming it.

    Example:
        >>> model.compile("adam", kd.recipes.hard_loss(), metrics=["accuracy"])
        >>> build_before_fit(model, x_train, y_train).fit(x_train, y_train)
    """
    if not getattr(model, "_is_compiled", False):
        raise ValueError(
            f"model must be compiled before build_before_fit, received: model={model.name!r}"
        )
    if is_graph_model(model):
        _build(model, x, y, model.trainable_variables, model.outputs[0].shape)
    return model


def _build(model, x, y, variables, logits_shape):
    """``build_before_fit`` with what the model knows: ``variables`` to update (``None`` when a
    layer builds on its first call: the optimizer is left) and the scored logits' shape."""
    with model.distribute_strategy.scope():
        if variables is not None and isinstance(model.optimizer, keras.optimizers.Optimizer):
            model.optimizer.build(variables)  # a no-op once built
        metrics, labels = model.compiled_metrics, _labels_spec(x, y)
        if metrics is None or metrics.built or labels is None or logits_shape is None:
            return
        logits_shape = tf.TensorShape(logits_shape)
        if not labels.shape[1:].is_fully_defined() or not logits_shape[1:].is_fully_defined():
            return
        metrics.build(
            tf.zeros([1, *logits_shape[1:]], tf.float32),
            tf.zeros([1, *labels.shape[1:]], labels.dtype),
        )


def _labels_spec(x, y):
    """The ``tf.TensorSpec`` of ``fit``'s labels, or ``None`` when they are not one array."""
    if y is None and isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        y = spec[1] if isinstance(spec, tuple) and len(spec) > 1 else None
        return y if isinstance(y, tf.TensorSpec) else None
    if y is None or isinstance(y, (dict, list, tuple)) or not hasattr(y, "shape"):
        return None
    return tf.TensorSpec([None, *y.shape[1:]], tf.as_dtype(y.dtype))


def _batch(outputs):
    first = outputs.logits if outputs.logits is not None else next(iter(outputs.scored.values()))
    return tf.cast(tf.shape(first)[0], tf.float32)


def _weights(y, logits, sample_weight):
    """Per-example metric weights: 0 for unlabeled rows, else the sample weight (or 1)."""
    weights = _labels.labeled_mask(y, logits)
    if sample_weight is not None:
        weights *= tf.cast(tf.reshape(sample_weight, [-1]), tf.float32)
    return weights


def _correct(y, logits, sample_weight):
    """Per-example top-1 correctness and its weights (``_weights``)."""
    weights = _weights(y, logits, sample_weight)
    labels = _labels.sparse_labels(y, logits)
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return tf.cast(tf.equal(predicted, labels), tf.float32), weights
