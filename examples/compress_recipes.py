"""What examples/compress.py, examples/benchmark_compress.py and examples/pipeline.py share.

The recipes themselves are ``keras_kd.compress.apply_recipe``; this module holds the examples'
fine-tuning (``make_train_fn``: by distillation from the teacher, or on the labels alone) and
their common start (``teacher_and_data``, ``float_student``).
"""

import keras_kd as kd
from examples.models import make_student, train_teacher
from keras_kd import compress, keras


def teacher_and_data(s):
    """Loads the dataset (its first ``s.train_size`` training examples) and trains the teacher.

    Args:
        s: The script's shared settings (``examples.common_flags.with_settings``): ``dataset``,
            ``train_size`` (0: all), ``seed`` (set before the teacher is built), ``teacher_epochs``
            and ``teacher_width`` (``examples.models.train_teacher``), ``batch_size``,
            ``learning_rate`` and ``verbose``.

    Returns:
        ``((x, y), (x_test, y_test), num_classes, teacher, teacher_accuracy)``.

    Raises:
        keras_kd.data.DatasetNotFoundError: If the dataset's files are missing.

    Example:
        >>> (x, y), test, classes, teacher, acc = teacher_and_data(s)
    """
    (x, y), (x_test, y_test) = kd.data.load(s.dataset)
    if s.train_size:
        x, y = x[: s.train_size], y[: s.train_size]
    num_classes = int(max(y.max(), y_test.max())) + 1
    teacher = train_teacher(
        x,
        y,
        s.teacher_epochs,
        s.teacher_width,
        s.batch_size,
        s.learning_rate,
        s.verbose,
        s.seed,
        num_classes,
    )
    teacher_acc = float(teacher.evaluate(x_test, y_test, verbose=0)[1])
    return (x, y), (x_test, y_test), num_classes, teacher, teacher_acc


def float_student(s, teacher, x, y, num_classes, distill):
    """The example student trained ``s.epochs`` epochs, and its fine-tuning for compression.

    The student (``examples.models.make_student`` of ``s.student_width``) is built after seeding
    ``s.seed + 1`` and trained by ``make_train_fn``: distilled from ``teacher`` or, without
    ``distill``, on the labels alone.

    Args:
        s: The script's shared settings: ``seed``, ``student_width``, ``epochs`` and the
            ``make_train_fn`` options ``batch_size``, ``learning_rate``, ``temperature``,
            ``alpha`` and ``verbose``.
        teacher: The trained teacher.
        x: Training inputs.
        y: Integer class ids.
        num_classes: Number of logits.
        distill: Distill from ``teacher`` (else labels alone).

    Returns:
        ``(student, fine_tune)``: the trained student and ``fine_tune(epochs)``, which returns
        the ``make_train_fn`` of ``epochs`` epochs with the same options.

    Example:
        >>> student, fine_tune = float_student(s, teacher, x, y, 10, distill=True)
        >>> fine_tune(4)(model)  # four more epochs
    """
    options = dict(
        batch_size=s.batch_size,
        learning_rate=s.learning_rate,
        temperature=s.temperature,
        alpha=s.alpha,
        distill=distill,
        verbose=s.verbose,
    )
    keras.utils.set_random_seed(s.seed + 1)
    student = make_student(x.shape[1:], num_classes, width=s.student_width)
    make_train_fn(teacher, x, y, s.epochs, **options)(student)
    return student, lambda epochs: make_train_fn(teacher, x, y, epochs, **options)


def make_train_fn(
    teacher,
    x,
    y,
    epochs,
    batch_size=64,
    learning_rate=3e-3,
    temperature=4.0,
    alpha=0.1,
    distill=True,
    verbose=0,
    callbacks=None,
    histories=None,
    distill_losses=None,
    schedule="constant",
):
    """Returns ``train_fn(model, rate=None)``, which distills ``model`` (or fits it on the labels).

    ``train_fn`` is the ``fine_tune`` of ``keras_kd.compress.apply_recipe``; ``rate`` overrides
    ``learning_rate`` for one call. ``callbacks`` is a list of Keras callbacks or a function
    ``model -> list`` called per ``train_fn`` call; each fit's ``History.history`` is appended to
    ``histories`` when given. ``distill_losses`` is a function returning fresh distillation loss
    layers for each call; ``None`` distills with ``LogitsKD(temperature)``. ``schedule`` is one of
    ``keras_kd.recipes.SCHEDULES``: with ``"cosine"`` each call's learning rate decays from its
    rate to 0 over its epochs.
    """

    def train_fn(model, rate=None):
        rate = learning_rate if rate is None else rate
        if distill:
            losses = distill_losses() if distill_losses else [kd.losses.LogitsKD(temperature)]
            trainer = kd.Distiller(model, teacher, losses=losses, alpha=alpha)
            extra = []  # Distiller.fit adds what the compressed student needs
        else:
            trainer, extra = model, compress.training_callbacks(model)
        given = callbacks(model) if callable(callbacks) else list(callbacks or [])
        total = kd.recipes.steps(len(x), epochs, batch_size)
        optimizer = kd.recipes.scheduled_adam(rate, total, schedule)
        trainer.compile(optimizer, kd.recipes.hard_loss(), metrics=["accuracy"])
        history = trainer.fit(
            x, y, epochs=epochs, batch_size=batch_size, verbose=verbose, callbacks=given + extra
        )
        if histories is not None:
            histories.append(history.history)
        return history

    return train_fn
