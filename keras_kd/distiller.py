"""The Distiller: a Keras model that trains a student from labels and a frozen teacher."""

from absl import logging

from keras_kd import _labels, resilience, teacher_stage
from keras_kd._checks import check_fraction
from keras_kd._compat import keras, tf
from keras_kd._distiller_checks import (
    check_augment,
    check_hard_loss,
    check_logits_model,
    check_loss_weights,
    check_losses,
    check_optimizer,
    check_pairs,
    check_teachers,
    output_shape,
    prepare_losses,
)
from keras_kd.features import FeatureTap, paired_layers
from keras_kd.losses import FeatureLoss
from keras_kd.losses._ops import ensemble_logits
from keras_kd.teachers import resolve as teachers_config
from keras_kd.training_step import StepOutputs, TrainingStep


@keras.utils.register_keras_serializable(package="keras_kd")
class Distiller(TrainingStep):
    """Trains ``student`` on the hard labels and on distillation losses against a frozen ``teacher``.

    Each training step runs the teacher once in inference mode outside the gradient tape, runs the
    student once (with every feature tap the losses ask for), and minimizes

        loss = alpha * hard_loss + sum(loss_weights[i] * losses[i](teacher, student)) + regularization

    where ``hard_loss`` is the loss given to ``compile`` on the student's logits. Gradients reach the
    student and the weights owned by loss layers (adapters), never the teacher. ``evaluate``,
    ``predict`` and ``call`` use the student alone; the ``loss`` that ``evaluate`` reports is the hard
    loss. ``sample_weight`` weighs the hard loss; distillation losses are batch means.

    ``fit`` composes named stages, each usable alone (see ``fit``); its teacher stage runs the
    teacher once per dataset when it can. Both models must output logits (no final softmax).

    Paper: Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network".

    Args:
        student: The built Keras model to train.
        teacher: The built Keras model to learn from, or a list of several teachers whose softened
            outputs are averaged (Hinton et al. 2015's ensemble targets). Teachers are never updated
            and none may be ``student``. A teacher may also be a Keras 3 model, a SavedModel
            directory, a ``.tflite`` file or a callable from a numpy batch to numpy logits
            (``keras_kd.teachers``); feature losses need a tf_keras or Keras 3 graph teacher.
            With several teachers (kinds may mix) every loss must be a logit loss; each sees the
            teachers as one ensemble (``keras_kd.losses.LogitLoss.ensemble``), and
            ``keras_kd.losses.MultiTeacherKD(teacher_weights=...)`` weighs them.
        losses: Distillation loss layers, each a subclass of ``keras_kd.losses.LogitLoss`` or
            ``keras_kd.losses.FeatureLoss`` (the contract in ``keras_kd.losses.base``).
            Default, from the measured suite ``examples/benchmark_regimes.py`` (README "Does
            distillation beat the student alone?"), ``keras_kd.losses.defaults``: for one
            teacher, DIST at ``T=4`` with ``beta=gamma=2``, switched by the first ``fit`` to
            ``DIST()`` (``T=1``) when its array labels hold at least 2,000 labeled examples per
            class (``default_losses_reason`` says which and why); ``[MultiTeacherKD(
            temperature=4.0)]`` for several. Hinton et al.'s setting is one call away:
            ``losses=[keras_kd.losses.LogitsKD(temperature=4.0)], alpha=0.1``.
        alpha: Weight of the hard-label loss, in [0, 1]. Default ``None``: 0.5 for one teacher
            (the DIST paper's 1:1 weighting of labels and teacher), 0.1 for several.
        loss_weights: One weight >= 0 per distillation loss. Default ``1 - alpha`` for each.
        cache_teacher: ``"auto"`` (cache when the inputs are deterministic: arrays, or a dataset with
            no random ops), ``True`` (cache; an error when that is unsafe) or ``False`` (always live).
        cache_dtype: ``"float16"`` (default) or ``"float32"`` storage of cached outputs.
        cache_top_k: Cache only the top-k logits per example (plus the mean of the rest), for
            many-class problems; ``None`` caches all logits.
        cache_dir: Directory for the cache of a ``tf.data.Dataset`` that does not fit in memory;
            ``None`` keeps it in memory. Array inputs are always cached in memory.
        augment: A Keras layer applied once per training batch, whose output both teacher and student
            receive (consistent teaching, Beyer et al. 2022); e.g. ``keras_kd.data.MixUp()`` or a
            ``keras.Sequential`` of random image layers. The teacher then runs live, unless
            ``replay_views`` is set. Layers that mix examples (``mixes_examples = True``) need
            ``alpha=0``, since labels are not mixed.
        replay_views: ``K`` >= 1 to draw ``K`` views of each example once, run the teacher once per
            view and replay them with their stored outputs (Shen & Xing 2022, "A Fast Knowledge
            Distillation Framework for Visual Recognition"; ``keras_kd.replay``); ``None`` (default)
            runs the teacher live under ``augment``. Stored like the cache (``cache_dtype``,
            ``cache_top_k``, ``cache_dir``); ``augment`` must be replayable
            (``keras_kd.data.views``).
        replay_seed: Integer seed of the replayed views and of their epoch order.
        teacher_precision: ``"auto"`` (default: bfloat16 on CPUs with AMX, else float32),
            ``"float32"`` or ``"bfloat16"``, for every teacher pass (``keras_kd.teachers.precision``;
            bfloat16 is used only if it agrees with float32 on a sample). ``fit`` sets
            ``teacher_precision_report``.
        **kwargs: Passed to ``keras.Model`` (``name``).

    Raises:
        ValueError: If a model is missing or unbuilt, the teacher is the student, the two output
            shapes differ, ``alpha`` is outside [0, 1], ``loss_weights`` is mis-sized or negative,
            or ``replay_views`` is set without a replayable ``augment``.
        TypeError: If a model is not a ``keras.Model`` or a loss subclasses neither ``LogitLoss``
            nor ``FeatureLoss``.

    Example:
        >>> distiller = Distiller(student=student, teacher=teacher, alpha=0.1)
        >>> distiller.compile(optimizer="adam",
        ...     loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ...     metrics=["accuracy"])
        >>> history = distiller.fit(x_train, y_train, epochs=5)
        >>> distiller.save_student("student.keras")
    """

    def __init__(
        self,
        student,
        teacher,
        losses=None,
        alpha=None,
        loss_weights=None,
        cache_teacher="auto",
        cache_dtype="float16",
        cache_top_k=None,
        cache_dir=None,
        augment=None,
        replay_views=None,
        replay_seed=0,
        teacher_precision="auto",
        **kwargs,
    ):
        kwargs.setdefault("name", "distiller")
        super().__init__(**kwargs)
        check_logits_model("student", student)
        teachers = check_teachers(teacher, student)
        self.student = student
        self.teacher = teachers[0] if len(teachers) == 1 else teachers
        # The first fit sets the default DIST's temperature from the labels it sees (``defaults``).
        self._losses_by_data = losses is None and len(teachers) == 1
        self.default_losses_reason = None
        if losses is None or alpha is None:
            from keras_kd.losses import defaults

            default_losses, default_alpha = defaults(len(teachers))
            losses = default_losses if losses is None else losses
            alpha = default_alpha if alpha is None else alpha
        self.alpha = check_fraction("alpha", alpha, "[0, 1]")
        self.distillation_losses = check_losses(losses, len(teachers))
        check_pairs(self.distillation_losses, teachers, student)
        self.loss_weights = check_loss_weights(
            loss_weights, len(self.distillation_losses), self.alpha
        )
        self._track(terms=["hard_loss", *(loss.name for loss in self.distillation_losses)])
        self.augment = check_augment(augment, self.alpha)
        # Not a Keras layer: the teachers are tracked as ``teacher``, never as trainable weights.
        self.teacher_stage = teacher_stage.TeacherStage(
            teachers,
            self.distillation_losses,
            cache_teacher,
            cache_dtype,
            cache_top_k,
            cache_dir,
            self.augment,
            replay_views,
            replay_seed,
            teacher_precision,
            output_shape(student)[-1] if output_shape(student) is not None else None,
        )
        student_layers = paired_layers(self.distillation_losses, 1)
        self._student_tap = FeatureTap(student, student_layers, role="student")
        prepare_losses(
            self.distillation_losses,
            self.teacher_stage.tap,
            self._student_tap,
            teachers[0],
            student,
        )
        # Both models are built; nothing of the Distiller's own waits for a first call.
        self.built = True

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        """Configures training like ``keras.Model.compile``; ``loss`` is the hard-label loss.

        Args:
            optimizer: A Keras optimizer or its name.
            loss: The hard-label loss on the student's logits, e.g.
                ``SparseCategoricalCrossentropy(from_logits=True)``. Required when ``alpha > 0``.
            metrics: Metrics computed on the student's logits.
            **kwargs: Passed to ``keras.Model.compile`` (``jit_compile``, ``steps_per_execution``, ...).

        Raises:
            ValueError: If ``loss`` is missing while ``alpha > 0``, expects probabilities or is an
                unknown name, or ``optimizer`` is an unknown name.
        """
        check_optimizer(optimizer)
        check_hard_loss(loss, self.alpha)
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        """Recompiles from ``get_compile_config()`` when a saved Distiller is loaded."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        self.optimizer.build(self._step_variables())

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def _step_inputs(self, x, training):
        return self.teacher_stage.outputs(x, training)

    @property
    def teacher_cached(self):
        """Whether the last ``fit`` read stored teacher outputs (cache or replay); ``None`` before."""
        return self.teacher_stage.cached

    @property
    def teacher_precision_report(self):
        """The teacher precision chosen by the first ``fit`` (``keras_kd.teachers.precision``)."""
        return self.teacher_stage.precision_report

    @property
    def replay(self):
        """The ``keras_kd.replay.ReplayCache`` of ``replay_views``, or ``None``."""
        return self.teacher_stage.replay

    def _step_terms(self, x, y, sample_weight, targets, training):
        """The hard loss and each distillation term; ``evaluate`` scores the hard loss alone."""
        if not training:
            logits = self.student(x, training=False)
            # With alpha=0, compile(loss=None) is allowed and there is no hard loss to report.
            if y is None or not self.loss:
                return StepOutputs([], logits)
            return StepOutputs([(None, 1.0, self.hard_term(y, logits, sample_weight))], logits)
        t_logits, t_features = targets
        s_logits, s_features = self._student_tap(x, training=True)
        terms = []
        if self.alpha > 0:
            if y is None:
                raise ValueError(
                    f"alpha={self.alpha} > 0 needs labels, but the data has none; pass y or set alpha=0"
                )
            terms.append(("hard_loss", self.alpha, self.hard_term(y, s_logits, sample_weight)))
        teachers = tf.unstack(t_logits, axis=1) if isinstance(self.teacher, list) else [t_logits]
        for loss, weight in zip(self.distillation_losses, self.loss_weights):
            kwargs = {}
            if isinstance(loss, FeatureLoss):
                t_inputs = loss.pick_features(t_logits, t_features, 0)
                args = (t_inputs, loss.pick_features(s_logits, s_features, 1))
            else:  # a LogitLoss (__init__ admits no other kind): the teachers as one ensemble
                args = (loss.ensemble(teachers), s_logits)
                if loss.uses_labels:  # the ensemble's top-1 where an example has no label
                    kwargs["labels"] = _labels.sparse_labels(y, ensemble_logits(teachers))
            terms.append((loss.name, weight, loss(*args, **kwargs)))
        return StepOutputs(terms, s_logits)

    def _step_variables(self):
        variables = list(self.student.trainable_variables)
        for loss in self.distillation_losses:
            variables.extend(loss.trainable_variables)
        return variables

    @property
    def _variables_exist_before_fit(self):
        # __init__ prepared the losses, except a subclassed model's: those build at the first step.
        return all(
            loss.built or type(loss).build is keras.layers.Layer.build
            for loss in self.distillation_losses
        )

    def _logits_shape(self):
        return output_shape(self.student)

    def _step_regularization(self):
        return self.student.losses  # not the teacher's

    def _guarded_layers(self):
        return [self.student, *self.distillation_losses]

    def fit(self, x=None, y=None, **kwargs):
        """Trains like ``keras.Model.fit``, composing these stages (each usable alone) in order:

        1. Data checks of ``x`` and ``y`` against the student and the hard loss.
        2. Required callbacks (``keras_kd.model_callbacks``): those the student carries and
           ``callbacks`` lacks, e.g. tfmot's ``UpdatePruningStep`` for a ``keras_kd.compress.prune``
           student (and ``PruningSummaries`` into the ``log_dir`` of a TensorBoard callback).
        3. Resumption (``keras_kd.resilience.resume_from_backup``): backups are restored before
           the teacher stage reads the teacher, and run after the other callbacks.
        4. The non-finite guard ``nonfinite_guard`` (``keras_kd.nonfinite.NonFiniteGuard``).
        5. The teacher stage ``teacher_stage`` (``keras_kd.teacher_stage.TeacherStage``, which
           also gives the step its teacher outputs): teacher outputs cached once for
           deterministic inputs (``keras_kd.cache``), replayed per pre-drawn view with
           ``replay_views`` (``keras_kd.replay``; ``replay`` is the ``ReplayCache``), else live;
           it logs the choice and sets ``teacher_cached``.

        Raises:
            ValueError: If ``cache_teacher=True`` but the inputs cannot be cached safely; if ``x``
                is empty or does not fit the student's input shape; if ``y`` has another length
                than ``x``, class ids outside the student's classes, one-hot rows of another
                width, or one-hot rows for a sparse loss (class ids for a categorical one).
            FloatingPointError: If a loss term or a gradient becomes NaN or Inf. That step applies
                no update and its forward-pass state (batch-norm statistics, QAT ranges, pruning
                step) is undone without a distribution strategy: the last finite weights remain.
        """
        seen = teacher_stage.as_student_sees(self.augment, x)  # e.g. RandomCrop changes the shape
        _labels.check_fit_data(seen, y, self.student, getattr(self, "loss", None), self.alpha)
        if self._losses_by_data:
            self._choose_default_losses(y)
        callbacks = self._required_callbacks(kwargs.get("callbacks"))
        kwargs["callbacks"] = resilience.resume_from_backup(
            self, x, callbacks, kwargs.get("initial_epoch", 0)
        )
        self._build_before_fit(x, y)
        x, y, kwargs = self.teacher_stage.prepare(x, y, kwargs)
        return self._guarded_fit(x, y, **kwargs)

    def _choose_default_losses(self, y):
        """Applies ``keras_kd.losses.defaults``' rule to the first ``fit``'s labels, once."""
        from keras_kd.losses import defaults

        self._losses_by_data = False
        labeled, classes = _labels.labeled_count(y), output_shape(self.student)[-1]
        per_class = labeled / classes if labeled is not None and classes else None
        (chosen,), _ = defaults(1, per_class)
        loss = self.distillation_losses[0]
        loss.beta, loss.gamma, loss.temperature = chosen.beta, chosen.gamma, chosen.temperature
        self.train_function = self.test_function = None  # any traced earlier used the old setting
        counted = "unknown (no array labels)" if per_class is None else f"{per_class:,.0f}"
        self.default_losses_reason = (
            f"labeled examples per class: {counted}; default loss DIST(beta={loss.beta:g}, "
            f"gamma={loss.gamma:g}, temperature={loss.temperature:g}), alpha={self.alpha:g}"
        )
        logging.info("keras_kd: %s", self.default_losses_reason)

    def save_student(self, filepath, **kwargs):
        """Saves the student alone (never the teacher) with ``keras.Model.save``, atomically.

        ``.keras`` and ``.h5`` files are written under a temporary name and renamed when complete
        (``keras_kd.resilience.save_model_atomically``), so a crash never truncates a saved student.

        Args:
            filepath: Where to save, e.g. ``"student.keras"``.
            **kwargs: Passed to ``keras.Model.save``.

        Returns:
            ``filepath``.
        """
        return resilience.save_model_atomically(self.student, filepath, **kwargs)

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {
            "name": self.name,
            "student": serialize(self.student),
            "teacher": teachers_config.serialize(self.teacher),
            "losses": [serialize(loss) for loss in self.distillation_losses],
            "alpha": self.alpha,
            "loss_weights": list(self.loss_weights),
            "cache_teacher": self.teacher_stage.cache_teacher,
            "cache_dtype": self.teacher_stage.cache.dtype,
            "cache_top_k": self.teacher_stage.cache.top_k,
            "cache_dir": self.teacher_stage.cache.cache_dir,
            "augment": serialize(self.augment) if self.augment is not None else None,
            "replay_views": self.replay.views if self.replay else None,
            "replay_seed": self.teacher_stage.replay_seed,
            "teacher_precision": self.teacher_stage.precision,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        deserialize = keras.saving.deserialize_keras_object
        config["student"] = deserialize(config["student"], custom_objects=custom_objects)
        config["teacher"] = teachers_config.deserialize(config["teacher"], custom_objects)
        config["losses"] = [
            deserialize(loss, custom_objects=custom_objects) for loss in config["losses"]
        ]
        if config.get("augment") is not None:
            config["augment"] = deserialize(config["augment"], custom_objects=custom_objects)
        return cls(**config)
