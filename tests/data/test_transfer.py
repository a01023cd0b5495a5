"""Transfer-set helpers: appending unlabeled inputs and labeling a large set with the teacher."""

import numpy as np
import pytest

import keras_kd as kd


def test_with_unlabeled_marks_the_appended_rows():
    x, y = np.zeros((3, 4), np.float32), np.array([0, 1, 2])
    x_all, y_all = kd.data.with_unlabeled(x, y, np.ones((2, 4), np.float32))
    assert x_all.shape == (5, 4)
    np.testing.assert_array_equal(y_all, [0, 1, 2, -1, -1])


def test_with_unlabeled_refuses_other_example_shapes():
    with pytest.raises(ValueError, match=r"x_unlabeled examples have shape \(5,\)"):
        kd.data.with_unlabeled(np.zeros((3, 4)), np.zeros(3), np.zeros((2, 5)))


def test_label_with_teacher_matches_predict_in_batches(digits, teacher):
    (x, _), _ = digits
    soft = kd.data.label_with_teacher(teacher, x[:300], batch_size=128, dtype="float32")
    np.testing.assert_allclose(soft, teacher.predict(x[:300], verbose=0), atol=1e-5)
    assert kd.data.label_with_teacher(teacher, x[:10]).dtype == np.float16


@pytest.mark.parametrize(
    "kwargs, message", [({"batch_size": 0}, "batch_size"), ({"dtype": "int8"}, "dtype")]
)
def test_label_with_teacher_refuses_bad_arguments(teacher, kwargs, message):
    with pytest.raises(ValueError, match=message):
        kd.data.label_with_teacher(teacher, np.zeros((2, 8, 8, 1), np.float32), **kwargs)
