"""What examples/compress.py, examples/benchmark_compress.py and examples/pipeline.py share.

The recipes themselves are ``keras_kd.compress.apply_recipe``; this module holds the examples'
fine-tuning (``make_train_fn``: by distillation from the teacher, or on the labels alone) and
their common start (``teacher_and_data``).
"""

import keras_kd as kd
from examples.models import train_teacher
from keras_kd import compress, keras


def teacher_and_data(
    dataset, train_size, seed, teacher_epochs, teacher_width, batch_size, learning_rate, verbose
):
    """Loads ``dataset`` (its first ``train_size`` training examples) and trains the teacher.

    Args:
        dataset: A ``keras_kd.data.load`` name.
        train_size: Training examples kept (0: all).
        seed: Seed set before the teacher is built.
        teacher_epochs: Epochs of the teacher (``examples.models.train_teacher``).
        teacher_width: Filters of the teacher's first block.
        batch_size: Batch size.
        learning_rate: Adam learning rate.
        verbose: Keras ``fit`` verbosity.

    Returns:
        ``((x, y), (x_test, y_test), num_classes, teacher, teacher_accuracy)``.

    Raises:
        keras_kd.data.DatasetNotFoundError: If the dataset's files are missing.

    Example:
        >>> (x, y), test, classes, teacher, acc = teacher_and_data("digits", 0, 0, 5, 32, 64, 3e-3, 0)
    """
    (x, y), (x_test, y_test) = kd.data.load(dataset)
    if train_size:
        x, y = x[:train_size], y[:train_size]
    num_classes = int(max(y.max(), y_test.max())) + 1
    teacher = train_teacher(
        x, y, teacher_epochs, teacher_width, batch_size, learning_rate, verbose, seed, num_classes
    )
    teacher_acc = float(teacher.evaluate(x_test, y_test, verbose=0)[1])
    return (x, y), (x_test, y_test), num_classes, teacher, teacher_acc


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
):
    """Returns ``train_fn(model, rate=None)``, which distills ``model`` (or fits it on the labels).

    ``train_fn`` is the ``fine_tune`` of ``keras_kd.compress.apply_recipe``; ``rate`` overrides
    ``learning_rate`` for one call. ``callbacks`` is a list of Keras callbacks or a function
    ``model -> list`` called per ``train_fn`` call; each fit's ``History.history`` is appended to
    ``histories`` when given. ``distill_losses`` is a function returning fresh distillation loss
    layers for each call; ``None`` distills with ``LogitsKD(temperature)``.
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
        trainer.compile(keras.optimizers.Adam(rate), kd.recipes.hard_loss(), metrics=["accuracy"])
        history = trainer.fit(
            x, y, epochs=epochs, batch_size=batch_size, verbose=verbose, callbacks=given + extra
        )
        if histories is not None:
            histories.append(history.history)
        return history

    return train_fn
