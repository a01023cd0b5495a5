"""The report figures are written as PNG files."""

import pytest

from keras_kd.report import plot_tradeoff, plot_training_curves

ROWS = [
    {"name": "kd", "accuracy": 0.93, "bytes": 10_000, "gzip_bytes": 7_000, "latency_ms": 0.02},
    {
        "name": "kd+prune",
        "accuracy": 0.90,
        "bytes": 10_000,
        "gzip_bytes": 4_000,
        "latency_ms": 0.02,
    },
    {"name": "kd+qat", "accuracy": 0.94, "bytes": 10_500, "gzip_bytes": 7_000, "latency_ms": 0.01},
]
TEACHER = {
    "name": "teacher",
    "accuracy": 0.98,
    "bytes": 60_000,
    "gzip_bytes": 55_000,
    "latency_ms": 0.05,
}


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("x_key", ["bytes", "gzip_bytes", "latency_ms"])
def test_plot_tradeoff_writes_a_png(tmp_path, x_key):
    path = plot_tradeoff(ROWS, str(tmp_path / "f.png"), x_key, references=[TEACHER], chosen="kd")
    assert _is_png(path)
    assert (tmp_path / "f.png").stat().st_size > 5_000


def test_plot_training_curves_writes_one_png_for_every_term(tmp_path):
    histories = {
        "kd": {"loss": [2.0, 1.0], "logits_kd": [1.5, 0.7], "accuracy": [0.5, 0.8]},
        "scratch": {"loss": [2.1, 1.1], "accuracy": [0.4, 0.7]},
    }
    assert _is_png(plot_training_curves(histories, str(tmp_path / "curves.png")))


def test_plots_reject_empty_inputs(tmp_path):
    with pytest.raises(ValueError, match="candidates must not be empty"):
        plot_tradeoff([], str(tmp_path / "f.png"))
    with pytest.raises(ValueError, match="at least one term"):
        plot_training_curves({"kd": {"loss": []}}, str(tmp_path / "c.png"))
