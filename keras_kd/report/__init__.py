"""Reports on candidate models: Pareto front, choice inside a budget, plots, markdown and HTML.

Example:
    >>> from keras_kd import report
    >>> chosen, rejected = report.choose(rows, max_bytes=64_000)
    >>> report.plot_tradeoff(rows, "accuracy_vs_size.png", "bytes")
"""

from keras_kd.report.browser import find_chromium, screenshot
from keras_kd.report.machine import describe_machine
from keras_kd.report.pareto import choose, pareto_front, violations
from keras_kd.report.plots import plot_tradeoff, plot_training_curves
from keras_kd.report.tensorboard import (
    ScalarLogger,
    tensorboard_callback,
    tensorboard_installed,
    write_scalars,
)
from keras_kd.report.writers import table_rows, text_table, write_html, write_markdown

__all__ = [
    "ScalarLogger",
    "choose",
    "describe_machine",
    "find_chromium",
    "pareto_front",
    "plot_tradeoff",
    "plot_training_curves",
    "screenshot",
    "table_rows",
    "tensorboard_callback",
    "tensorboard_installed",
    "text_table",
    "violations",
    "write_html",
    "write_markdown",
    "write_scalars",
]
