"""Training recipes: a classifier (teacher or scratch student) and patient, consistent teaching.

Both use Adam with cosine learning-rate decay to zero over the planned steps (by default), so the
last epoch's weights are the ones to report: no selection on a held-out set is needed to avoid a
noisy end. ``hard_loss`` is the label loss of every keras_kd classifier: cross-entropy on logits.
"""

import math

from keras_kd import _checks
from keras_kd._compat import keras
from keras_kd.training_step import build_before_fit


def cosine_adam(learning_rate, total_steps):
    """Adam whose learning rate decays from ``learning_rate`` to 0 along a cosine over the run.

    Paper: Loshchilov & Hutter (2017), "SGDR: Stochastic Gradient Descent with Warm Restarts"
    (cosine decay); Kingma & Ba (2015), "Adam: A Method for Stochastic Optimization".

    Args:
        learning_rate: Initial learning rate, > 0.
        total_steps: Optimizer steps of the whole run (``epochs * ceil(examples / batch_size)``).

    Returns:
        A ``keras.optimizers.Adam``.

    Raises:
        ValueError: If ``learning_rate`` is not > 0 or ``total_steps`` is not an integer >= 1.

    Example:
        >>> optimizer = cosine_adam(3e-3, total_steps=10 * 79)
    """
    _checks.check_positive("learning_rate", learning_rate)
    _checks.check_positive_int("total_steps", total_steps)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, int(total_steps))
    return keras.optimizers.Adam(schedule)


SCHEDULES = ("cosine", "constant")


def scheduled_adam(learning_rate, total_steps, schedule="cosine"):
    """Adam at a learning-rate ``schedule``: ``"cosine"`` (``cosine_adam``) or ``"constant"``.

    Paper: Loshchilov & Hutter (2017), "SGDR: Stochastic Gradient Descent with Warm Restarts"
    (cosine decay); Kingma & Ba (2015), "Adam: A Method for Stochastic Optimization".

    Args:
        learning_rate: Initial (or constant) learning rate, > 0.
        total_steps: Optimizer steps of the whole run; the cosine decays to 0 over them.
        schedule: One of ``SCHEDULES``.

    Returns:
        A ``keras.optimizers.Adam``.

    Raises:
        ValueError: If ``schedule`` is not one of ``SCHEDULES``, ``learning_rate`` is not > 0, or
            (for ``"cosine"``) ``total_steps`` is not an integer >= 1.

    Example:
        >>> optimizer = scheduled_adam(3e-3, total_steps=10 * 79, schedule="constant")
    """
    _checks.check_choice("schedule", schedule, SCHEDULES)
    if schedule == "cosine":
        return cosine_adam(learning_rate, total_steps)
    _checks.check_positive("learning_rate", learning_rate)
    return keras.optimizers.Adam(learning_rate)


def hard_loss():
    """The hard-label loss of a logits classifier: sparse categorical cross-entropy on logits.

    What a Distiller's ``compile(loss=...)`` takes for its ``alpha`` term, and what teachers and
    scratch students train on (``train_classifier``).

    Paper: Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network" (the
    hard-label term beside the soft targets).

    Returns:
        A new ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``.

    Example:
        >>> distiller.compile(optimizer="adam", loss=hard_loss(), metrics=["accuracy"])
    """
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def steps(num_examples, epochs, batch_size):
    """Optimizer steps of ``epochs`` passes over ``num_examples`` in batches of ``batch_size``.

    Args:
        num_examples: Training examples, >= 1.
        epochs: Passes over them, >= 1.
        batch_size: Examples per step, >= 1.

    Returns:
        ``epochs * ceil(num_examples / batch_size)``, an int.

    Raises:
        ValueError: If an argument is not an integer >= 1.

    Example:
        >>> steps(5000, 30, 128)
        1200
    """
    for name, value in (("num_examples", num_examples), ("epochs", epochs)):
        _checks.check_positive_int(name, value)
    _checks.check_positive_int("batch_size", batch_size)
    return int(epochs) * math.ceil(int(num_examples) / int(batch_size))


def image_augmentation(input_shape, seed=None):
    """Random shifts (and horizontal flips for images) that keep a small image's content.

    Rank-3 inputs ``(H, W, C)`` get ``RandomTranslation(0.1, 0.1)`` and ``RandomFlip("horizontal")``;
    rank-2 signals ``(L, C)`` get a random translation along their length. Use it as a Distiller's
    ``augment`` (both models see the same view) or inside a teacher's training.

    Paper: Beyer, Zhai, Royer, Markeeva, Anil & Kolesnikov (2022), "Knowledge distillation: A good
    teacher is patient and consistent" (the same random crop/flip for teacher and student).

    Args:
        input_shape: Shape of one example without the batch axis.
        seed: Optional integer seed of the random layers.

    Returns:
        A ``keras.Sequential`` of random layers, active only in training.

    Raises:
        ValueError: If ``input_shape`` is not of rank 2 or 3.

    Example:
        >>> augment = image_augmentation((28, 28, 1))
    """
    shape = tuple(input_shape)
    if len(shape) == 3:
        layers = [
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed),
            keras.layers.RandomFlip("horizontal", seed=seed),
        ]
    elif len(shape) == 2:
        layers = [
            keras.layers.Reshape((shape[0], 1, shape[1])),
            keras.layers.RandomTranslation(0.1, 0.0, fill_mode="constant", seed=seed),
            keras.layers.Reshape(shape),
        ]
    else:
        raise ValueError(
            f"input_shape must be (H, W, C) or (L, C), received: input_shape={input_shape!r}"
        )
    return keras.Sequential([keras.Input(shape), *layers], name="augmentation")


def consistent_views(input_shape, mixup=True):
    """The views of patient, consistent teaching: ``image_augmentation``, then ``MixUp(1.0)``.

    Paper: Beyer, Zhai, Royer, Markeeva, Anil & Kolesnikov (2022), "Knowledge distillation: A good
    teacher is patient and consistent" (function matching: shifts, flips and mixup).

    Args:
        input_shape: Shape of one example without the batch axis, ``(H, W, C)`` or ``(L, C)``.
        mixup: Also mix examples (``keras_kd.data.MixUp(1.0)``); the result then has
            ``mixes_examples = True`` and needs a Distiller with ``alpha=0``.

    Returns:
        A Keras layer for a Distiller's ``augment``; ``keras_kd.data.views.view_plan`` accepts it,
        so its views can be replayed (``replay_views``).

    Raises:
        ValueError: If ``input_shape`` is not of rank 2 or 3.

    Example:
        >>> augment = consistent_views((28, 28, 1))
    """
    from keras_kd.data import MixUp

    shifts = image_augmentation(input_shape)
    if not mixup:
        return shifts
    augment = keras.Sequential([shifts, MixUp(1.0)], name="consistent_views")
    augment.mixes_examples = True
    return augment


def train_classifier(
    model,
    x,
    y,
    epochs,
    batch_size=128,
    learning_rate=3e-3,
    augment=False,
    validation_data=None,
    verbose=0,
    schedule="cosine",
    callbacks=None,
):
    """Trains a logits classifier on labels with Adam, optionally on augmented views.

    This is how keras_kd's examples train teachers and scratch students: by default the same
    optimizer and schedule as ``patient_distiller``, so scratch and distilled students differ only
    in the loss.

    Paper: Kingma & Ba (2015), "Adam: A Method for Stochastic Optimization"; Loshchilov & Hutter
    (2017), "SGDR: Stochastic Gradient Descent with Warm Restarts" (the cosine decay).

    Args:
        model: A built Keras model that outputs logits.
        x: Training inputs (numpy array).
        y: Integer class ids.
        epochs: Passes over the data, >= 1.
        batch_size: Examples per step.
        learning_rate: Initial learning rate of the cosine decay.
        augment: ``True`` for ``image_augmentation`` of the input's shape, a Keras layer of your
            own, or ``False``.
        validation_data: Optional ``(x, y)`` evaluated after every epoch (reported, never used to
            select weights).
        verbose: Keras verbosity.
        schedule: ``"cosine"`` (the learning rate decays to 0 over the run, ``cosine_adam``) or
            ``"constant"`` (plain Adam at ``learning_rate``).
        callbacks: Keras callbacks for ``fit`` (e.g. TensorBoard), or ``None``.

    Returns:
        The ``keras.callbacks.History`` of the run. ``model`` is trained in place and compiled with
        ``hard_loss()`` and accuracy.

    Raises:
        ValueError: If ``epochs``, ``batch_size`` or ``learning_rate`` is out of range, or
            ``schedule`` is not one of ``SCHEDULES``.

    Example:
        >>> history = train_classifier(teacher, x_train, y_train, epochs=20, augment=True)
    """
    _checks.check_positive_int("epochs", epochs)
    _checks.check_choice("schedule", schedule, SCHEDULES)
    total = steps(len(x), epochs, batch_size)
    layer = image_augmentation(x.shape[1:]) if augment is True else (augment or None)
    # Built before fit, so that a BackupAndRestore among the callbacks restores into its weights.
    trained = model if layer is None else keras.Sequential([keras.Input(x.shape[1:]), layer, model])
    loss = hard_loss()
    trained.compile(scheduled_adam(learning_rate, total, schedule), loss, metrics=["accuracy"])
    build_before_fit(trained, x, y)  # one trace of the step, not two
    history = trained.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation_data,
        verbose=verbose,
        callbacks=callbacks,
    )
    if trained is not model:
        model.compile(trained.optimizer, loss, metrics=["accuracy"])
    return history


def patient_distiller(
    student,
    teacher,
    num_examples,
    epochs,
    batch_size=128,
    learning_rate=3e-3,
    mixup=True,
    temperature=1.0,
    replay_views=None,
    replay_seed=0,
):
    """A compiled ``Distiller`` set up for function matching, ready for a long ``fit``.

    Both models see the same augmented view of every batch (random shifts and flips from
    ``image_augmentation``, then MixUp), the loss is the KL to the teacher at ``temperature``
    (1, as in the paper) with no label term (``alpha=0``), and the learning rate follows a cosine
    decay over ``epochs``. Train it long: the paper's gains come after hundreds of epochs. Labels
    are not needed; ``fit(x)`` is enough. The teacher runs live on every batch, or, with
    ``replay_views=K``, once per pre-drawn view (Shen & Xing 2022, "A Fast Knowledge Distillation
    Framework for Visual Recognition"; ``keras_kd.replay``).

    Paper: Beyer, Zhai, Royer, Markeeva, Anil & Kolesnikov (2022), "Knowledge distillation: A good
    teacher is patient and consistent".

    Args:
        student: The built Keras student (outputs logits).
        teacher: The built Keras teacher (outputs logits).
        num_examples: Training examples per epoch (to plan the cosine decay).
        epochs: Epochs you will pass to ``fit``.
        batch_size: Batch size you will pass to ``fit``.
        learning_rate: Initial learning rate.
        mixup: Also mix examples within the batch (``keras_kd.data.MixUp(1.0)``).
        temperature: Softmax temperature of the KL.
        replay_views: ``K`` views per example drawn once and replayed with stored teacher
            outputs, or ``None`` for the live teacher.
        replay_seed: Seed of the replayed views.

    Returns:
        A compiled ``keras_kd.Distiller`` (accuracy metric on the student).

    Raises:
        ValueError: If a count or the learning rate is out of range.

    Example:
        >>> distiller = patient_distiller(student, teacher, len(x_train), epochs=150)
        >>> distiller.fit(x_train, epochs=150, batch_size=128)
    """
    from keras_kd.distiller import Distiller
    from keras_kd.losses import LogitsKD

    total = steps(num_examples, epochs, batch_size)
    augment = consistent_views(student.input_shape[1:], mixup)
    distiller = Distiller(
        student,
        teacher,
        losses=[LogitsKD(temperature=temperature)],
        alpha=0.0,
        loss_weights=[1.0],
        augment=augment,
        replay_views=replay_views,
        replay_seed=replay_seed,
    )
    distiller.compile(cosine_adam(learning_rate, total), hard_loss(), metrics=["accuracy"])
    return distiller
