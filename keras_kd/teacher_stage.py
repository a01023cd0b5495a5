"""The teacher stage of ``Distiller.fit``: live, cached or replayed teacher outputs.

``teacher_stage`` decides the teacher's precision once (``keras_kd.teachers.precision``), then
chooses how the teacher's outputs reach the training step: cached once for deterministic inputs
(``keras_kd.cache``), replayed with pre-drawn views under augmentation (``keras_kd.replay``), or live
on every batch; it logs the choice and returns what ``keras.Model.fit`` then receives.
"""

import numpy as np
from absl import logging

from keras_kd import cache, features
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


def teacher_stage(distiller, x, y, kwargs):
    """Chooses live, cached or replayed teacher outputs for ``Distiller.fit`` and prepares them.

    Args:
        distiller: The ``keras_kd.Distiller`` about to train.
        x, y: ``fit``'s inputs.
        kwargs: ``fit``'s other keyword arguments.

    Returns:
        ``(x, y, kwargs)`` to give ``keras.Model.fit``.
    """
    replay = getattr(distiller, "replay", None)
    batch_size = max(kwargs.get("batch_size") or 32, 256)
    if distiller.teacher_precision_report is None:  # decided once, before any teacher pass
        teachers = distiller.teacher if isinstance(distiller.teacher, list) else [distiller.teacher]
        models, report = precision.choose(distiller.teacher_precision, teachers, x)
        distiller.teacher_precision_report = report
        if report["precision"] != "float32":
            distiller._teacher_tap = features.teacher_tap(models, distiller.distillation_losses)
            # Through __dict__, so that Keras does not track the copies as the Distiller's weights.
            distiller.__dict__["_keras_kd_teacher_copies"] = list(zip(teachers, models))
            for stored in (distiller._teacher_cache, replay):
                if stored is not None:
                    stored.tag = report["precision"]
    for teacher, copy in distiller.__dict__.get("_keras_kd_teacher_copies", []):
        copy.set_weights(teacher.get_weights())  # a teacher changed since the last fit
    if replay is not None:
        logging.info("keras_kd: teacher outputs replayed (%d views per example)", replay.views)
        distiller.teacher_cached = True
        x, kwargs = replay_input(replay, x, y, kwargs)
        for callback in kwargs.get("callbacks") or []:
            if hasattr(callback, "replays_epochs"):
                callback.replays_epochs = True  # one iterator spans every epoch
        return x, None, kwargs
    use_cache, reason = cache.decide(
        x, distiller.cache_teacher, augmenting=distiller.augment is not None
    )
    logging.info("keras_kd: teacher outputs %s (%s)", "cached" if use_cache else "live", reason)
    distiller.teacher_cached = use_cache
    if use_cache:
        x = distiller._teacher_cache.annotate(x, batch_size=batch_size)
    return x, y, kwargs
