"""Tests of keras_kd.students.difficulty: confidence cascades, their curves and the plot."""

import numpy as np
import pytest

from keras_kd import keras
from keras_kd import students as st


def _logits():
    """Three inputs, three stages: confident at stage 0, at stage 1, never (uniform)."""
    sure, unsure = [8.0, 0.0, 0.0], [0.0, 0.0, 0.0]
    return np.array(
        [
            [sure, sure, sure],
            [unsure, [0.0, 8.0, 0.0], [0.0, 8.0, 0.0]],
            [unsure, unsure, [0.0, 0.0, 1.0]],
        ],
        dtype=np.float32,
    )


@pytest.mark.parametrize(
    "threshold, expected", [(0.0, [0, 0, 0]), (0.9, [0, 1, 2]), (1.01, [2, 2, 2])]
)
def test_first_confident_stops_at_the_first_stage_over_the_threshold(threshold, expected):
    assert st.first_confident(_logits(), threshold).tolist() == expected


def test_cascade_curve_matches_a_hand_computed_sweep():
    y = np.array([0, 1, 2])  # stage 0 gets only the first right (uniform logits argmax to 0)
    curve = st.cascade_curve(_logits(), y, [10, 30, 60], thresholds=[0.0, 0.9, 1.01])
    assert [p["accuracy"] for p in curve] == pytest.approx([1 / 3, 1, 1])
    assert [p["average_macs"] for p in curve] == pytest.approx([10, 100 / 3, 60])
    assert curve[1]["stage_fractions"] == pytest.approx([1 / 3, 1 / 3, 1 / 3])


@pytest.mark.parametrize(
    "macs, thresholds, message",
    [
        ([10, 30], [0.5], "must agree"),
        ([30, 10, 60], [0.5], "must not decrease"),
        ([10, 30, 60], [-1.0], "threshold=-1.0"),
    ],
)
def test_cascade_curve_rejects_bad_arguments(macs, thresholds, message):
    with pytest.raises(ValueError, match=message):
        st.cascade_curve(_logits(), [0, 1, 0], macs, thresholds)


def test_width_curve_escalates_from_the_narrowest_width(digits):
    _, (x_test, y_test) = digits
    keras.utils.set_random_seed(7)
    model = st.make_slimmable_cnn((8, 8, 1), 10, width=4)
    thresholds = [1.01, 0.5, 0.2, 0.0]
    curve = st.width_curve(model, x_test[:40], y_test[:40], thresholds)
    macs = [p["average_macs"] for p in curve]
    assert all(later <= earlier for earlier, later in zip(macs, macs[1:]))
    assert macs[-1] == model.width_macs()[0] and macs[0] == sum(model.width_macs())


def test_plot_accuracy_compute_writes_a_png(tmp_path):
    curve = st.cascade_curve(_logits(), [0, 1, 0], [10, 30, 60], [0.0, 0.9, 1.01])
    static = st.stage_points(_logits(), [0, 1, 0], [10, 20, 30], ["a", "b", "c"])
    path = st.plot_accuracy_compute({"cascade": curve, "stages": static}, str(tmp_path / "c.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="at least one point"):
        st.plot_accuracy_compute([], str(tmp_path / "empty.png"))
