"""Two-stage FSP training: first fit the teacher's flows between layers, then learn the task."""

import numpy as np

from keras_kd._checks import check_positive_int
from keras_kd._compat import keras
from keras_kd.distiller import Distiller
from keras_kd.features import FeatureTap
from keras_kd.losses.feature import FSP
from keras_kd.schemes import _training


def fsp_two_stage(
    teacher,
    student,
    train,
    validation_data=None,
    *,
    flows,
    kd=False,
    stage1_epochs=None,
    compare_with_scratch=False,
    **options,
):
    """Yim et al.'s two stages: fit the teacher's FSP matrices, then train on the task from there.

    Stage 1 trains ``student`` with a ``keras_kd.Distiller`` whose only loss is
    ``keras_kd.losses.FSP(flows)`` and ``alpha=0``: no labels, the student's flows between layers
    learn to match the teacher's (layers after the last flow get no gradient in stage 1, as Keras
    warns). Stage 2 continues from the stage-1 weights on the task: the hard labels alone, or with
    ``kd=True`` a Distiller from ``teacher`` (its measured default losses and ``alpha``, or the
    ``losses`` and ``alpha`` given). The paper's claim is faster optimization;
    ``compare_with_scratch=True`` also trains a copy of the student from its initial weights exactly
    as stage 2 trains (without stage 1), so that the two per-epoch histories can be compared.

    Paper: Yim, Joo, Bae & Kim (2017), "A Gift from Knowledge Distillation: Fast Optimization,
    Network Minimization and Transfer Learning".

    Args:
        teacher: The trained teacher (a graph model, or one with ``call_with_features``).
        student: The model to train in place, with layers whose channels match the teacher's flows.
        train: A ``tf.data.Dataset`` of ``(x, y)`` batches or an ``(x, y)`` tuple of arrays.
        validation_data: ``None`` or data in the same forms, evaluated after each epoch.
        flows: ``[((teacher_a, teacher_b), (student_a, student_b)), ...]`` layer names, as
            ``keras_kd.losses.FSP`` takes them (required).
        kd: Whether stage 2 distills from the teacher besides the hard labels.
        stage1_epochs: Epochs of stage 1, an integer >= 1; ``None`` uses ``epochs``.
        compare_with_scratch: Whether to also train a scratch copy (needs ``clone_model`` to work on
            ``student``: a Functional or Sequential model).
        **options: The training options every scheme shares (``keras_kd.schemes``):
            ``epochs`` (stage 2's), ``batch_size``, ``optimizer``, ``loss``, ``losses`` and
            ``alpha`` (stage 2's, with ``kd=True`` only), ``callbacks`` (given to stage 1,
            stage 2 and the scratch run, in that order), ``verbose``.

    Returns:
        A ``SchemeResult``: ``models == [student]``, ``histories`` its stage-2 history; extras
        ``stage1_history`` (its ``fsp`` key is the FSP loss per epoch), ``fsp_before`` and
        ``fsp_after`` (the mean FSP loss over ``train`` before and after stage 1), ``scratch``
        and ``scratch_history`` (the scratch copy and its history, else ``None``).

    Raises:
        ValueError: If ``flows`` is malformed or names unknown layers, the flows' shapes do not
            suit FSP (layers and shapes named), output shapes differ, ``losses`` or ``alpha`` is
            given without ``kd=True``, or another argument is malformed; always before training.
        TypeError: If a model is not a Keras model, or an option is unknown.

    Example:
        >>> result = fsp_two_stage(teacher, student, (x_train, y_train),
        ...     flows=[(("t_pool1", "t_block2"), ("s_pool1", "s_block2"))],
        ...     epochs=5, compare_with_scratch=True)
        >>> result.histories[0]["accuracy"], result.extras["scratch_history"]["accuracy"]
    """
    run = _training.settings("fsp_two_stage", train, validation_data, **options)
    if stage1_epochs is not None:
        check_positive_int("stage1_epochs", stage1_epochs)
    if not isinstance(kd, bool) or not isinstance(compare_with_scratch, bool):
        raise ValueError(
            f"kd and compare_with_scratch must be True or False, received: kd={kd!r}, "
            f"compare_with_scratch={compare_with_scratch!r}"
        )
    if not kd and (run.losses is not None or run.alpha is not None):
        raise ValueError(
            "losses and alpha set stage 2's distillation, which needs kd=True, received: kd=False, "
            f"losses={run.losses!r}, alpha={run.alpha!r}"
        )
    _training.check_models("model", [("teacher", teacher), ("student", student)])
    fsp = FSP(flows)
    stage1 = Distiller(student=student, teacher=teacher, losses=[fsp], alpha=0.0)  # checks shapes
    scratch = None
    if compare_with_scratch:
        scratch = keras.models.clone_model(student)
        scratch.set_weights(student.get_weights())

    fsp_before = _mean_loss(fsp, teacher, student, run)
    stage1.compile(optimizer=run.new_optimizer(), loss=run.loss, metrics=["accuracy"])
    stage1_history = run.fit(stage1, epochs=stage1_epochs)
    fsp_after = _mean_loss(fsp, teacher, student, run)

    def task(model):
        return run.distill(teacher, model) if kd else run.fit(run.compile(model))

    stage2_history = task(student)
    extras = {
        "stage1_history": stage1_history,
        "fsp_before": fsp_before,
        "fsp_after": fsp_after,
        "scratch": scratch,
        "scratch_history": task(scratch) if scratch is not None else None,
    }
    return _training.SchemeResult([student], [stage2_history], extras)


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
