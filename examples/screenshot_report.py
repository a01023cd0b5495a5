r"""Renders a pipeline report (report.html) in headless Chromium and writes a PNG screenshot.

    python -m examples.screenshot_report --report_html=keras_kd_runs/pipeline/report.html
    python -m examples.screenshot_report --report_html=out/report.html --window_size=1280,4000

Checks that a real browser shows the report (plots visible, table readable). The PNG is written
next to the report unless ``--screenshot_png`` says otherwise. The last line of output is one JSON
object with the PNG's path and size and the pixel standard deviation (near 0 for a blank page).
"""

import os
import sys

if not __package__:  # python examples/<name>.py: import the package as `python -m` does
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)

import json

from absl import app, flags

from examples import common_flags
from keras_kd import report

FLAGS = flags.FlagValues()
common_flags.define(FLAGS)
flags.DEFINE_string(
    "report_html",
    None,
    "The report to render, e.g. keras_kd_runs/pipeline/report.html.",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "screenshot_png",
    None,
    "Where to write the PNG (default: report_screenshot.png beside it).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "window_size", "1280,2400", "Browser window WIDTH,HEIGHT in pixels.", flag_values=FLAGS
)
for _name, _check, _message in (
    ("report_html", lambda p: p is None or os.path.isfile(p), "--report_html must be a file"),
    (
        "screenshot_png",
        lambda p: p is None or p.endswith(".png"),
        "--screenshot_png must be a .png path",
    ),
    (
        "window_size",
        lambda text: (
            len(text.split(",")) == 2 and all(p.strip().isdigit() for p in text.split(","))
        ),
        "--window_size must look like 1280,2400",
    ),
):
    flags.register_validator(_name, _check, _message, flag_values=FLAGS)


def pixel_std(png_path):
    """The standard deviation of the PNG's grayscale pixels (0 for a blank, one-colour page)."""
    import numpy as np
    from PIL import Image

    with Image.open(png_path) as image:
        return float(np.asarray(image.convert("L"), dtype=np.float32).std())


def run(report_html, screenshot_png=None, width=1280, height=2400):
    """Renders ``report_html``; returns ``{"png", "width", "height", "pixel_std"}``."""
    if screenshot_png is None:
        screenshot_png = os.path.join(os.path.dirname(report_html), "report_screenshot.png")
    path = report.screenshot(report_html, screenshot_png, width=width, height=height)
    from PIL import Image

    with Image.open(path) as image:
        size = image.size
    return {"png": path, "width": size[0], "height": size[1], "pixel_std": pixel_std(path)}


def main(argv):
    common_flags.reject_extra_arguments(argv)
    if FLAGS.report_html is None:
        raise app.UsageError("--report_html is required (the pipeline's report.html)")
    width, height = (int(p) for p in FLAGS.window_size.split(","))
    result = run(FLAGS.report_html, FLAGS.screenshot_png, width, height)
    print(f"screenshot: {result['png']}")
    print(json.dumps(result))


if __name__ == "__main__":
    common_flags.run_app(main, FLAGS)
