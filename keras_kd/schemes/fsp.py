"""Two-stage FSP training: first fit the teacher's flows between layers, then learn the task."""

import typing

import numpy as np

from keras_kd._checks import check_alpha
from keras_kd._compat import keras
from keras_kd.distiller import Distiller
from keras_kd.features import FeatureTap
from keras_kd.losses.base import validate_positive
from keras_kd.losses.feature import FSP
from keras_kd.losses.logits import LogitsKD
from keras_kd.schemes import _training


class FSPResult(typing.NamedTuple):
    """What ``fsp_two_stage`` returns.

    Attributes:
        student: The trained student (stage 1, then stage 2, in place).
        stage1_history: Stage 1's ``fit`` history dict (its ``fsp`` key is the FSP loss per epoch).
        stage2_history: Stage 2's ``fit`` history dict (``loss``, ``accuracy``, ``val_...``).
        fsp_before: Mean FSP loss over ``train`` before stage 1.
        fsp_after: Mean FSP loss over ``train`` after stage 1.
        scratch: With ``compare_with_scratch=True``, a copy of the student from its initial weights
            trained exactly as stage 2 but without stage 1; else ``None``.
        scratch_history: The scratch copy's ``fit`` history dict, for comparing the convergence of
            stage 2 epoch by epoch; else ``None``.
    """

    student: keras.Model
    stage1_history: dict
    stage2_history: dict
    fsp_before: float
    fsp_after: float
    scratch: typing.Optional[keras.Model]
    scratch_history: typing.Optional[dict]


def fsp_two_stage(
    teacher,
    student,
    flows,
    train,
    *,
    kd=False,
    alpha=0.1,
    temperature=4.0,
    stage1_epochs=None,
    compare_with_scratch=False,
    epochs=10,
    optimizer="adam",
    loss=None,
    batch_size=64,
    validation_data=None,
    callbacks=None,
    verbose=0,
):
    """Yim et al.'s two stages: fit the teacher's FSP matrices, then train on the task from there.

    Stage 1 trains ``student`` with a ``keras_kd.Distiller`` whose only loss is
    ``keras_kd.losses.FSP(flows)`` and ``alpha=0``: no labels, the student's flows between layers
    learn to match the teacher's (layers after the last flow get no gradient in stage 1, as Keras
    warns). Stage 2 continues from the stage-1 weights on the task: the hard
    labels alone, or with ``kd=True`` a Distiller with ``keras_kd.losses.LogitsKD`` and ``alpha``.
    The paper's claim is faster optimization; ``compare_with_scratch=True`` also trains a copy of
    the student from its initial weights exactly as stage 2 trains (without stage 1), so that the
    two per-epoch histories can be compared.

    Paper: Yim, Joo, Bae & Kim (2017), "A Gift from Knowledge Distillation: Fast Optimization,
    Network Minimization and Transfer Learning".

    Args:
        teacher: The trained teacher (a graph model, or one with ``call_with_features``).
        student: The model to train in place, with layers whose channels match the teacher's flows.
        flows: ``[((teacher_a, teacher_b), (student_a, student_b)), ...]`` layer names, as
            ``keras_kd.losses.FSP`` takes them.
        train: A ``tf.data.Dataset`` of ``(x, y)`` batches or an ``(x, y)`` tuple of arrays.
        kd: Whether stage 2 adds ``LogitsKD`` from the teacher to the hard labels.
        alpha: Weight of the hard labels in stage 2 with ``kd=True``, in [0, 1].
        temperature: Temperature > 0 of ``LogitsKD`` with ``kd=True``.
        stage1_epochs: Epochs of stage 1, an integer >= 1; ``None`` uses ``epochs``.
        compare_with_scratch: Whether to also train a scratch copy (needs ``clone_model`` to work on
            ``student``: a Functional or Sequential model).
        epochs, optimizer, loss, batch_size, validation_data, callbacks, verbose: The common
            training arguments (see ``keras_kd.schemes``); ``epochs`` is stage 2's. Callbacks are
            given to stage 1, stage 2 and the scratch run, in that order.

    Returns:
        An ``FSPResult``.

    Raises:
        ValueError: If ``flows`` is malformed or names unknown layers, the flows' shapes do not
            suit FSP (layers and shapes named), output shapes differ, or another argument is
            malformed; always before training.

    Example:
        >>> result = fsp_two_stage(teacher, student,
        ...     [(("t_pool1", "t_block2"), ("s_pool1", "s_block2"))], (x_train, y_train),
        ...     epochs=5, compare_with_scratch=True)
        >>> result.stage2_history["accuracy"], result.scratch_history["accuracy"]
    """
    run = _training.settings(
        train, epochs, optimizer, loss, batch_size, validation_data, callbacks, verbose
    )
    if stage1_epochs is not None:
        _training.check_count("stage1_epochs", stage1_epochs)
    if not isinstance(kd, bool) or not isinstance(compare_with_scratch, bool):
        raise ValueError(
            f"kd and compare_with_scratch must be True or False, received: kd={kd!r}, "
            f"compare_with_scratch={compare_with_scratch!r}"
        )
    alpha = check_alpha(alpha)
    temperature = validate_positive("temperature", temperature)
    _training.check_models("model", [("teacher", teacher), ("student", student)])
    fsp = FSP(flows)
    stage1 = Distiller(
        student=student, teacher=teacher, losses=[fsp], alpha=0.0
    )  # checks the shapes
    scratch = None
    if compare_with_scratch:
        scratch = keras.models.clone_model(student)
        scratch.set_weights(student.get_weights())

    fsp_before = _mean_loss(fsp, teacher, student, run)
    stage1.compile(optimizer=run.new_optimizer(), loss=run.loss, metrics=["accuracy"])
    stage1_history = run.fit(stage1, epochs=stage1_epochs)
    fsp_after = _mean_loss(fsp, teacher, student, run)

    stage2_history = _task(run, teacher, student, kd, alpha, temperature)
    scratch_history = (
        _task(run, teacher, scratch, kd, alpha, temperature) if scratch is not None else None
    )
    return FSPResult(
        student, stage1_history, stage2_history, fsp_before, fsp_after, scratch, scratch_history
    )


def _task(run, teacher, model, kd, alpha, temperature):
    """Trains ``model`` on the task: the labels, or a Distiller with LogitsKD when ``kd``."""
    if kd:
        return _training.distill(run, teacher, model, [LogitsKD(temperature)], alpha)
    return run.fit(run.compile(model))


def _mean_loss(fsp, teacher, student, run, max_batches=64):
    """The FSP loss averaged over (at most ``max_batches``) batches of ``train``, inference mode."""
    teacher_tap = FeatureTap(teacher, [t for t, _ in fsp.pairs], role="teacher")
    student_tap = FeatureTap(student, [s for _, s in fsp.pairs], role="student")
    values = []
    for index, batch in enumerate(_training.batches(run.train, run.batch_size)):
        if index == max_batches:
            break
        x = batch[0]
        _, t_features = teacher_tap(x, training=False)
        _, s_features = student_tap(x, training=False)
        values.append(
            float(fsp([t_features[t] for t, _ in fsp.pairs], [s_features[s] for _, s in fsp.pairs]))
        )
    return float(np.mean(values))
