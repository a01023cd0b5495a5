"""Teacher and student architectures that the example scripts share, and the trained teacher.

Inputs of rank 3 ``(H, W, C)`` get 2-D convolutions, rank 2 ``(L, C)`` 1-D convolutions. Layer names
(``t_block1``, ``s_block2``, ...) are stable so that feature losses can pair them.
"""

import os

import keras_kd as kd
from keras_kd import keras


def _conv(input_shape):
    if len(input_shape) == 3:
        return keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.GlobalAveragePooling2D
    if len(input_shape) == 2:
        return keras.layers.Conv1D, keras.layers.MaxPooling1D, keras.layers.GlobalAveragePooling1D
    raise ValueError(
        f"input_shape must be (H, W, C) or (L, C), received: input_shape={input_shape!r}"
    )


def _block(conv, x, filters, name, batch_norm=False, convs=1):
    """``convs`` 3x3 ``conv`` layers with ReLU, the last named ``name`` (earlier ``<name>_<i>``).

    With ``batch_norm`` each is conv, BN, then ReLU.
    """
    for i in range(1, convs):
        x = _block(conv, x, filters, f"{name}_{i}", batch_norm)
    if not batch_norm:
        return conv(filters, 3, padding="same", activation="relu", name=name)(x)
    x = conv(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_norm")(x)
    return keras.layers.ReLU(name=name)(x)


def _two_blocks(input_shape, width, prefix, batch_norm=False, convs=1):
    """The input and two blocks: ``(inputs, features, pooling class, global pooling class)``.

    Blocks ``<prefix>_block1`` (``width`` filters) and ``<prefix>_block2`` (``2 * width``) of
    ``convs`` convolutions each, with max pooling ``<prefix>_pool1`` between; the layer classes are
    those of the input's rank.
    """
    conv, pool, global_pool = _conv(input_shape)
    inputs = keras.Input(input_shape)
    x = _block(conv, inputs, width, f"{prefix}_block1", batch_norm, convs)
    x = pool(2, name=f"{prefix}_pool1")(x)
    x = _block(conv, x, 2 * width, f"{prefix}_block2", batch_norm, convs)
    return inputs, x, pool, global_pool


def make_teacher(input_shape, num_classes, width=64, batch_norm=False, convs_per_block=1):
    """A CNN teacher: two convolution blocks with pooling, a 128-unit dense layer, logits out.

    Paper: Simonyan & Zisserman (2015), "Very Deep Convolutional Networks for Large-Scale Image
    Recognition" (stacks of 3x3 convolutions between poolings, ``convs_per_block=2``).

    Args:
        input_shape: Shape of one example, ``(H, W, C)`` or ``(L, C)``.
        num_classes: Number of output logits.
        width: Filters of the first block (the second has twice as many).
        batch_norm: Batch normalization (Ioffe & Szegedy 2015) after each convolution, for a
            stronger teacher trained longer with augmentation.
        convs_per_block: 3x3 convolutions per block, 1 to 3. Two double the depth for a teacher
            that underfits its augmented data (on 28x28 images at width 32: 18M MACs).

    Returns:
        An uncompiled functional ``keras.Model`` named ``teacher``.

    Raises:
        ValueError: If ``input_shape`` is neither rank 2 nor rank 3, or ``convs_per_block`` is
            not 1, 2 or 3.

    Example:
        >>> teacher = make_teacher((8, 8, 1), 10)
    """
    if convs_per_block not in (1, 2, 3):
        raise ValueError(
            f"convs_per_block must be 1, 2 or 3, received: convs_per_block={convs_per_block!r}"
        )
    return _vgg(input_shape, num_classes, width, "t", batch_norm, convs_per_block, "teacher")


def _vgg(input_shape, num_classes, width, prefix, batch_norm, convs, name):
    """Two blocks, a second pooling, a 128-unit dense layer with dropout, logits out."""
    inputs, x, pool, _ = _two_blocks(input_shape, width, prefix, batch_norm, convs)
    if min(x.shape[1:-1]) >= 4:
        x = pool(2, name=f"{prefix}_pool2")(x)
    x = keras.layers.Flatten(name=f"{prefix}_flatten")(x)
    x = keras.layers.Dense(128, activation="relu", name=f"{prefix}_dense")(x)
    x = keras.layers.Dropout(0.3, name=f"{prefix}_dropout")(x)
    outputs = keras.layers.Dense(num_classes, name=f"{prefix}_logits")(x)
    return keras.Model(inputs, outputs, name=name)


def make_student(input_shape, num_classes, width=16):
    """A small CNN student: two narrow convolution blocks, global average pooling, logits out.

    Args:
        input_shape: Shape of one example, ``(H, W, C)`` or ``(L, C)``.
        num_classes: Number of output logits.
        width: Filters of the first block (the second has twice as many).

    Returns:
        An uncompiled functional ``keras.Model`` named ``student``.

    Raises:
        ValueError: If ``input_shape`` is neither rank 2 nor rank 3.

    Example:
        >>> make_student((28, 28, 1), 10).count_params()
        5130
    """
    inputs, x, _, global_pool = _two_blocks(input_shape, width, "s")
    x = global_pool(name="s_global_pool")(x)
    outputs = keras.layers.Dense(num_classes, name="s_logits")(x)
    return keras.Model(inputs, outputs, name="student")


def make_small_cnn(input_shape, num_classes, width=8):
    """A ~0.1M-MAC CNN student: two stride-2 convolutions, a 32-unit layer, logits out.

    On 28x28 images with ``width=8`` it has 96k MACs and 27k parameters: an int8 file for a
    watch (``examples/configs/watch_fashion.cfg``) and the CNN student of
    ``examples/benchmark_regimes.py``.

    Args:
        input_shape: Shape of one example, ``(H, W, C)``.
        num_classes: Number of output logits.
        width: Filters of the first convolution (the second has twice as many).

    Returns:
        An uncompiled functional ``keras.Model`` named ``cnn``.

    Example:
        >>> student = make_small_cnn((28, 28, 1), 10)
    """
    inputs = keras.Input(input_shape)
    conv = keras.layers.Conv2D
    x = conv(width, 3, 2, padding="same", activation="relu", name="s_block1")(inputs)
    x = conv(2 * width, 3, 2, padding="same", activation="relu", name="s_block2")(x)
    x = keras.layers.Flatten(name="s_flatten")(x)
    x = keras.layers.Dense(32, activation="relu", name="s_dense")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, name="s_logits")(x), name="cnn")


def make_deep_cnn(input_shape, num_classes, width=4):
    """The deep teacher's architecture at a student's width: a student of the teacher's family.

    ``make_teacher(..., batch_norm=True, convs_per_block=2)`` with the student's layer names
    (``s_block1``, ``s_block2``, ...), so that feature methods pair it with the teacher. On 28x28
    images with ``width=4`` it has 362k MACs and 53k parameters (1/52 of the MACs of the
    ``watch_fashion.cfg`` teacher at width 32).

    Paper: Simonyan & Zisserman (2015), "Very Deep Convolutional Networks for Large-Scale Image
    Recognition"; Ioffe & Szegedy (2015), "Batch Normalization".

    Args:
        input_shape: Shape of one example, ``(H, W, C)`` or ``(L, C)``.
        num_classes: Number of output logits.
        width: Filters of the first block (the second has twice as many).

    Returns:
        An uncompiled functional ``keras.Model`` named ``deep_cnn``.

    Raises:
        ValueError: If ``input_shape`` is neither rank 2 nor rank 3.

    Example:
        >>> kd.students.count_macs(make_deep_cnn((28, 28, 1), 10))
        361920
    """
    return _vgg(input_shape, num_classes, width, "s", True, 2, "deep_cnn")


STUDENTS = {"gap_cnn": make_student, "small_cnn": make_small_cnn, "deep_cnn": make_deep_cnn}


def make_mlp(input_shape, num_classes, hidden=100):
    """An MLP student: flatten, two ReLU layers of ``hidden`` units, logits out (Greydanus 2020's MLP).

    Args:
        input_shape: Shape of one example.
        num_classes: Number of output logits.
        hidden: Units of each hidden layer.

    Returns:
        An uncompiled functional ``keras.Model`` named ``mlp``.

    Example:
        >>> mlp = make_mlp((40, 1), 10)
    """
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten(name="m_flatten")(inputs)
    x = keras.layers.Dense(hidden, activation="relu", name="m_dense1")(x)
    x = keras.layers.Dense(hidden, activation="relu", name="m_dense2")(x)
    outputs = keras.layers.Dense(num_classes, name="m_logits")(x)
    return keras.Model(inputs, outputs, name="mlp")


def train_teacher(
    x,
    y,
    epochs,
    width=64,
    batch_size=64,
    learning_rate=3e-3,
    verbose=0,
    seed=None,
    num_classes=None,
    path=None,
    callbacks=None,
    augment=False,
    batch_norm=False,
    convs_per_block=1,
):
    """The example CNN teacher (``make_teacher``) trained on ``(x, y)``, or loaded from ``path``.

    Training is ``keras_kd.recipes.train_classifier``: a constant learning rate, or with
    ``augment`` random shifts and flips (``keras_kd.recipes.image_augmentation``) and a cosine
    decay, for a stronger teacher in more epochs. With ``path``,
    an existing file there is loaded (``keras_kd.load_model``, compiled) instead of training, and a
    newly trained teacher is saved there (``keras_kd.resilience.save_model_atomically``).

    Args:
        x: Training inputs.
        y: Integer class ids.
        epochs: Training epochs.
        width: Filters of the teacher's first block.
        batch_size: Batch size.
        learning_rate: Adam learning rate.
        verbose: Keras ``fit`` verbosity.
        seed: Seed set before the teacher is built, or ``None`` to leave the random state alone.
        num_classes: Number of logits; ``None``: ``max(y) + 1``.
        path: A ``.keras`` file caching the teacher, or ``None``.
        callbacks: Keras callbacks of the training, or ``None``.
        augment: Train on augmented views with a cosine learning-rate decay.
        batch_norm: Batch normalization in the teacher (``make_teacher``).
        convs_per_block: Convolutions per teacher block (``make_teacher``).

    Returns:
        The trained teacher, compiled with accuracy.

    Example:
        >>> teacher = train_teacher(x_train, y_train, epochs=10, width=32)
    """
    if path and os.path.isfile(path):
        return kd.load_model(path, compile=True)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    classes = int(y.max()) + 1 if num_classes is None else num_classes
    teacher = make_teacher(x.shape[1:], classes, width, batch_norm, convs_per_block)
    kd.recipes.train_classifier(
        teacher,
        x,
        y,
        epochs,
        batch_size,
        learning_rate,
        augment=augment,
        verbose=verbose,
        schedule="cosine" if augment else "constant",
        callbacks=callbacks,
    )
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        kd.resilience.save_model_atomically(teacher, path)
    return teacher
