"""The HTML report renders in a real headless browser (Chromium) to a non-blank screenshot."""

import os

import numpy as np
import pytest

from keras_kd.report import find_chromium, screenshot, write_html


def test_screenshot_rejects_a_missing_page(tmp_path):
    with pytest.raises(ValueError, match="html_path must be an existing file"):
        screenshot(str(tmp_path / "missing.html"), str(tmp_path / "x.png"))


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium on this machine (apt chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    from PIL import Image

    row = {
        "name": "kd",
        "accuracy": 0.9,
        "agreement": 1.0,
        "bytes": 10_000,
        "gzip_bytes": 7_000,
        "latency_ms": 0.01,
        "parameters": 5_000,
        "sparsity": 0.0,
    }
    page = write_html(
        {"title": "report", "candidates": [row], "chosen": "kd", "front": ["kd"]},
        str(tmp_path / "report.html"),
    )
    png = screenshot(page, str(tmp_path / "shot.png"), width=800, height=600)
    assert os.path.isfile(png)
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.float32)
    assert pixels.shape == (600, 800)
    assert pixels.std() > 5.0  # a blank page is one colour
