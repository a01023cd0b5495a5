"""Tests of keras_kd.schemes.fsp_two_stage: stage 1 fits the flows, stage 2 starts from there."""

import numpy as np
import pytest

from keras_kd import keras, schemes
from keras_kd import losses as kd_losses
from tests.conftest import weights_equal

_FLOWS = [(("t_pool1", "t_block2"), ("s_pool1", "s_block2"))]


def _models():
    from examples.models import make_student, make_teacher

    keras.utils.set_random_seed(3)
    # Widths chosen so that the flows' channel counts match across sides (16 -> 32 on both).
    return make_teacher((8, 8, 1), 10, width=16), make_student((8, 8, 1), 10, width=16)


class _WeightsAtBoundaries(keras.callbacks.Callback):
    """Records the trained model's weights when a fit begins and ends."""

    def __init__(self, log):
        super().__init__()
        self.log = log

    def _weights(self):
        return getattr(self.model, "student", self.model).get_weights()

    def on_train_begin(self, logs=None):
        self.log.append(("begin", self._weights()))

    def on_train_end(self, logs=None):
        self.log.append(("end", self._weights()))


def test_fsp_stage1_lowers_the_fsp_loss_and_stage2_starts_from_its_weights(digits):
    (x, y), _ = digits
    teacher, student = _models()
    teacher.set_weights([w * 1.5 for w in teacher.get_weights()])  # any fixed teacher will do
    initial = student.get_weights()
    log = []
    result = schemes.fsp_two_stage(
        teacher,
        student,
        (x[:192], y[:192]),
        flows=_FLOWS,
        kd=True,
        epochs=1,
        stage1_epochs=1,
        compare_with_scratch=True,
        optimizer=lambda: keras.optimizers.Adam(1e-2),
        callbacks=lambda: [_WeightsAtBoundaries(log)],
    )
    extras = result.extras
    assert extras["fsp_after"] < extras["fsp_before"]
    assert "fsp" in extras["stage1_history"] and "hard_loss" not in extras["stage1_history"]
    (_, stage1_begin), (_, stage1_end), (_, stage2_begin), _, (_, scratch_begin), _ = log
    assert weights_equal(stage1_begin, initial) and not weights_equal(stage1_end, initial)
    assert weights_equal(stage2_begin, stage1_end)
    assert weights_equal(scratch_begin, initial)
    assert result.models == [student] and result.student is student
    assert extras["scratch"] is not student
    # The scratch copy trains as stage 2 does (here with the Distiller's default loss), for an
    # epoch-by-epoch comparison.
    stage2, scratch = result.histories[0], extras["scratch_history"]
    assert result.stage2_history is stage2
    assert len(stage2["accuracy"]) == len(scratch["accuracy"]) == 1
    default_loss = kd_losses.defaults()[0][0].name
    assert default_loss in stage2 and default_loss in scratch


def test_fsp_two_stage_without_kd_or_scratch_trains_stage2_on_the_labels(digits):
    (x, y), _ = digits
    teacher, student = _models()
    result = schemes.fsp_two_stage(teacher, student, (x[:64], y[:64]), flows=_FLOWS, epochs=1)
    assert result.extras["scratch"] is None and result.extras["scratch_history"] is None
    assert set(result.histories[0]) == {"loss", "accuracy"}
    assert np.isfinite(result.extras["fsp_before"]) and np.isfinite(result.extras["fsp_after"])


@pytest.mark.parametrize(
    "flows, kwargs, message",
    [
        ([(("t_pool1", "t_block2"), ("s_pool1", "nope"))], {}, "has no layer named 'nope'"),
        (
            [(("t_block1", "t_block2"), ("s_block1", "s_block2"))],
            {},
            "t_block1",
        ),  # spatial sizes differ
        (_FLOWS, {"stage1_epochs": 0}, "stage1_epochs must be an integer >= 1"),
        (_FLOWS, {"kd": "yes"}, "kd and compare_with_scratch must be True or False"),
        (
            _FLOWS,
            {"alpha": 0.2},
            "losses and alpha set stage 2's distillation, which needs kd=True",
        ),
    ],
)
def test_fsp_two_stage_rejects_bad_arguments_before_training(digits, flows, kwargs, message):
    (x, y), _ = digits
    teacher, student = _models()
    before = student.get_weights()
    with pytest.raises(ValueError, match=message):
        schemes.fsp_two_stage(teacher, student, (x[:8], y[:8]), flows=flows, epochs=1, **kwargs)
    assert weights_equal(student.get_weights(), before)
