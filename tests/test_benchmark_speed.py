"""examples.benchmark_speed's new modes, in-process on a few digits: replayed views, the teacher's
passes in each precision, the bfloat16 student and the live-vs-replay accuracy comparison."""

import numpy as np

from examples import benchmark_speed, benchmark_speed_modes
from examples.models import make_student, make_teacher


def test_replay_teacher_pass_and_bfloat16_modes_report_their_figures(tmp_path):
    teacher, student = make_teacher((8, 8, 1), 10, width=8), make_student((8, 8, 1), 10, width=4)
    teacher.save(tmp_path / "teacher.keras")
    student.save(tmp_path / "student.keras")
    args = {"dataset": "digits", "train_size": 128, "epochs": 2, "batch_size": 64, "seed": 0}
    replay = benchmark_speed_modes.run_mode("replay", work_dir=tmp_path, replay_views=3, **args)
    assert replay["views"] == 3 and replay["teacher_examples"] == 3 * 128
    assert replay["teacher_passes"] == 1 and replay["teacher_s"] > 0
    assert replay["teacher_precision"] in ("float32", "bfloat16") and replay["epoch_s"] > 0
    passes = benchmark_speed_modes.run_mode("teacher_pass", work_dir=tmp_path, **args)
    for name in ("float32", "bfloat16", "xla"):
        assert passes[f"teacher_pass_{name}_s"] > 0
    assert 0.9 <= passes["bfloat16_top1_agreement"] <= 1.0
    fast = benchmark_speed_modes.run_mode("student_bfloat16", work_dir=tmp_path, **args)
    assert np.isfinite(fast["accuracy"]) and fast["epoch_s"] > 0


def test_accuracy_compares_live_and_replayed_views_from_the_same_weights():
    teacher, student = make_teacher((8, 8, 1), 10, width=8), make_student((8, 8, 1), 10, width=4)
    result = benchmark_speed_modes.accuracy(teacher, student, "digits", 64, 1, 32, 1, views=2)
    assert len(result["live"]) == len(result["replay"]) == 1
    assert result["replay_minus_live"] == result["replay_mean"] - result["live_mean"]


def test_modes_cover_replay_and_precision():
    assert {"live_augmented", "replay", "student_bfloat16", "teacher_pass"} <= set(
        benchmark_speed.MODES
    )
