"""The teacher stage: how a frozen teacher's outputs reach a training step (live, cached, replayed).

``TeacherStage`` owns the teacher(s), the tap that reads their logits and paired features, the
cache and the replayed views. Before ``fit`` (``prepare``) it decides the teacher's precision once
(``keras_kd.teachers.precision``), then chooses how the outputs reach the step: cached once for
deterministic inputs (``keras_kd.cache``), replayed with pre-drawn views under augmentation
(``keras_kd.replay``), or live on every batch; it logs the choice and returns what
``keras.Model.fit`` then receives. In the step (``outputs``) it gives the teacher's outputs for a
batch, outside the gradient tape. The Distiller composes it; a training step of your own can too.
"""

import numpy as np
from absl import logging

from keras_kd import cache, features, replay
from keras_kd._compat import tf
from keras_kd.teachers import precision

_NOT_WITH_REPLAY = ("steps_per_epoch", "class_weight")


def replay_input(replay, x, y, kwargs):
    """Turns ``fit``'s input and keyword arguments into the replay stream, for ``Distiller.fit``.

    Args:
        replay: The ``keras_kd.replay.ReplayCache``.
        x: Arrays, or a finite ``tf.data.Dataset`` without random ops (read into memory).
        y: Labels or ``None``.
        kwargs: ``fit``'s other keyword arguments.

    Returns:
        ``(dataset, kwargs)`` for ``keras.Model.fit(dataset, **kwargs)``.

    Raises:
        ValueError: If the input cannot be replayed, or ``steps_per_epoch`` or
            ``class_weight`` is given.
    """
    kwargs = dict(kwargs)
    for name in _NOT_WITH_REPLAY:
        if kwargs.get(name) is not None:
            raise ValueError(
                f"{name} cannot be used with replay_views (every epoch is one pass over the "
                f"examples), received: {name}={kwargs[name]!r}"
            )
    sample_weight = kwargs.pop("sample_weight", None)
    batch_size = kwargs.pop("batch_size", None)
    shuffle = kwargs.pop("shuffle", True)
    if isinstance(x, tf.data.Dataset):
        x, y, sample_weight, batch_size, shuffle = _read_dataset(x)
    elif not isinstance(x, (np.ndarray, tf.Tensor)):
        raise ValueError(
            "replay_views needs the training inputs as one array or a finite tf.data.Dataset "
            f"without random ops, received: x=<{type(x).__name__}>"
        )
    x = np.asarray(x)
    split = kwargs.pop("validation_split", 0.0) or 0.0
    if split and kwargs.get("validation_data") is None:
        cut = int(len(x) * (1.0 - split))
        held = [a[cut:] for a in (x, y, sample_weight) if a is not None]
        kwargs["validation_data"] = tuple(held)
        x, y, sample_weight = (None if a is None else a[:cut] for a in (x, y, sample_weight))
    y, sample_weight = (None if a is None else np.asarray(a) for a in (y, sample_weight))
    dataset, kwargs["steps_per_epoch"] = replay.dataset(
        x,
        y,
        sample_weight,
        batch_size or 32,
        bool(shuffle),
        kwargs.get("epochs", 1),
        kwargs.get("initial_epoch", 0),
    )
    return dataset, kwargs


def _read_dataset(dataset):
    """A finite dataset without random ops as arrays, with its batch size and whether it shuffles."""
    found = cache.random_ops(dataset)
    if found or dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
        problem = f"ops that change its elements between passes: {found}" if found else "no end"
        raise ValueError(
            "replay_views draws its own views, so the dataset must give the same elements in every "
            f"pass, received: x=<tf.data.Dataset with {problem}>"
        )
    parts = [e if isinstance(e, tuple) else (e,) for e in dataset]
    if not parts or not all(isinstance(t, tf.Tensor) for t in parts[0]):
        raise ValueError(
            "replay_views needs a dataset of (x, y[, sample_weight]) tensors, received: x=<tf.data.Dataset of other elements>"
        )
    columns = [np.concatenate([p[i].numpy() for p in parts]) for i in range(len(parts[0]))]
    columns += [None] * (3 - len(columns))
    return (*columns, len(parts[0][0]), cache._shuffles(dataset))


def as_student_sees(augment, x):
    """``x`` for the Distiller's input checks: an array in the shape ``augment`` gives it.

    A shape-changing layer (``RandomCrop``, ``Resizing``) makes the student's input differ from
    ``x``; the result is a broadcast view (no copy) of ``len(x)`` examples of the augmented shape.
    """
    if augment is None or not isinstance(x, np.ndarray) or not len(x):
        return x
    one = augment(x[:1], training=False)
    if tuple(one.shape[1:]) == x.shape[1:]:
        return x
    return np.broadcast_to(np.asarray(one), (len(x), *one.shape[1:]))


class TeacherStage:
    """The teacher-output stage: the outputs a training step sees of frozen teachers.

    Paper: Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network" (the
    teacher's soft targets); Shen & Xing (2022), "A Fast Knowledge Distillation Framework for
    Visual Recognition" (stored outputs of replayed views).

    Args:
        teachers: A list of one or more built teachers (``keras_kd.teachers.resolve`` gives them).
        losses: The distillation loss layers (the tap reads the features their pairs name).
        cache_teacher, cache_dtype, cache_top_k, cache_dir, augment, replay_views, replay_seed,
            teacher_precision: As ``keras_kd.Distiller``'s arguments of those names.
        num_classes: The classes of the logits, or ``None`` when unknown (no ``cache_top_k``).

    Raises:
        ValueError: For a bad cache mode, precision or replay setting (see ``keras_kd.Distiller``).

    Example:
        >>> stage = TeacherStage([teacher], [keras_kd.losses.LogitsKD()])
        >>> x, y, fit_kwargs = stage.prepare(x_train, y_train, {"batch_size": 64})
        >>> x_batch, (teacher_logits, teacher_features) = stage.outputs(x_batch)  # in a step
    """

    def __init__(
        self,
        teachers,
        losses,
        cache_teacher="auto",
        cache_dtype="float16",
        cache_top_k=None,
        cache_dir=None,
        augment=None,
        replay_views=None,
        replay_seed=0,
        teacher_precision="auto",
        num_classes=None,
    ):
        if cache_top_k is not None and num_classes is None:
            raise ValueError(f"cache_top_k={cache_top_k} needs a student with a known output shape")
        self.teachers = list(teachers)
        self.losses = losses
        self.tap = features.teacher_tap(self.teachers, losses)
        self.cache_teacher = cache.check_mode(cache_teacher)
        self.cache = cache.TeacherCache(
            lambda x: self.tap(x, training=False),
            self.teachers,
            cache_dtype,
            cache_top_k,
            cache_dir,
        )
        self.augment = augment
        self.num_classes = num_classes
        self.precision = precision.check_precision(teacher_precision)
        self.precision_report = None
        views, self.replay_seed = replay.check_replay(
            replay_views, replay_seed, augment, self.cache_teacher
        )
        self.replay = views and replay.from_cache(self.cache, augment, views, self.replay_seed)
        self.cached = None  # set by prepare: True when the step reads stored outputs
        self._copies = []  # (teacher, reduced-precision copy) pairs

    def prepare(self, x, y, kwargs):
        """Chooses live, cached or replayed outputs for ``fit(x, y, **kwargs)`` and prepares them.

        Args:
            x, y: ``fit``'s inputs.
            kwargs: ``fit``'s other keyword arguments.

        Returns:
            ``(x, y, kwargs)`` to give ``keras.Model.fit``.

        Raises:
            ValueError: If ``cache_teacher=True`` but ``x`` cannot be cached safely, or the input
                cannot be replayed.
        """
        batch_size = max(kwargs.get("batch_size") or 32, 256)
        if self.precision_report is None:  # decided once, before any teacher pass
            models, report = precision.choose(self.precision, self.teachers, x)
            self.precision_report = report
            if report["precision"] != "float32":
                self.tap = features.teacher_tap(models, self.losses)
                self._copies = list(zip(self.teachers, models))
                for stored in (self.cache, self.replay):
                    if stored is not None:
                        stored.tag = report["precision"]
        for teacher, copy in self._copies:
            copy.set_weights(teacher.get_weights())  # a teacher changed since the last fit
        if self.replay is not None:
            logging.info(
                "keras_kd: teacher outputs replayed (%d views per example)", self.replay.views
            )
            self.cached = True
            x, kwargs = replay_input(self.replay, x, y, kwargs)
            for callback in kwargs.get("callbacks") or []:
                if hasattr(callback, "replays_epochs"):
                    callback.replays_epochs = True  # one iterator spans every epoch
            return x, None, kwargs
        use_cache, reason = cache.decide(x, self.cache_teacher, augmenting=self.augment is not None)
        logging.info("keras_kd: teacher outputs %s (%s)", "cached" if use_cache else "live", reason)
        self.cached = use_cache
        if use_cache:
            x = self.cache.annotate(x, batch_size=batch_size)
        return x, y, kwargs

    def outputs(self, x, training=True):
        """The batch as the student sees it and the teachers' ``(logits, features)``, no gradient.

        Args:
            x: A batch as ``fit`` gives it to the step (with stored outputs when ``prepare``
                cached or replayed them).
            training: ``False`` (evaluation) returns ``(x, None)`` without a teacher pass.

        Returns:
            ``(x, targets)``: ``x`` after ``augment`` (once per batch: teacher and student see
            the same view), ``targets`` the teachers' stopped ``(logits, features)``.
        """
        x, stored = cache.split_batch(x)
        if not training:
            return x, None
        if self.augment is not None and stored is None:  # replayed views come drawn
            x = self.augment(x, training=True)
        if stored is not None:
            logits, feature_maps = cache.decode(stored, self.num_classes)
        else:
            logits, feature_maps = self.tap(x, training=False)
        return x, (
            tf.stop_gradient(logits),
            tf.nest.map_structure(tf.stop_gradient, feature_maps),
        )
