"""Report figures (matplotlib, PNG): accuracy against size or latency, and training curves.

matplotlib is imported inside the functions with the ``Agg`` backend, so that ``import keras_kd``
stays light and plotting works without a display.
"""

import math
import os

from keras_kd.report.pareto import pareto_front

_AXIS_LABELS = {
    "bytes": "model size (bytes, .tflite)",
    "gzip_bytes": "model size (bytes, gzip -9 of .tflite)",
    "latency_ms": "latency (ms, one example, LiteRT)",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_tradeoff(candidates, path, x_key="bytes", references=None, chosen=None):
    """Plots accuracy against ``x_key`` for every candidate and marks the Pareto front.

    The front (Pareto-optimal candidates in accuracy and ``x_key``; see ``pareto_front``) is
    joined by a line; references (e.g. the teacher and the scratch student) are drawn as
    distinct markers and are not part of the front; the chosen candidate is ringed.

    Args:
        candidates: Dicts with ``name``, ``accuracy`` and ``x_key``.
        path: Where to write the PNG; its directory must exist.
        x_key: The cost on the x axis: ``"bytes"``, ``"gzip_bytes"`` or ``"latency_ms"``.
        references: Optional dicts like the candidates, drawn as reference points.
        chosen: Optional name of the chosen candidate.

    Returns:
        ``path``.

    Raises:
        ValueError: If ``candidates`` is empty.

    Example:
        >>> plot_tradeoff(rows, "accuracy_vs_size.png", "bytes", references=[teacher_row])
        'accuracy_vs_size.png'
    """
    if not candidates:
        raise ValueError("candidates must not be empty, received: candidates=[]")
    plt = _pyplot()
    references = list(references or [])
    front = pareto_front(candidates, maximize=("accuracy",), minimize=(x_key,))
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=100)
    ax.scatter(
        [c[x_key] for c in candidates],
        [c["accuracy"] for c in candidates],
        s=40,
        color="#1f77b4",
        label="candidate",
        zorder=3,
    )
    front = sorted(front, key=lambda c: c[x_key])
    ax.plot(
        [c[x_key] for c in front],
        [c["accuracy"] for c in front],
        "-",
        color="#d62728",
        marker="D",
        markersize=7,
        markerfacecolor="none",
        label="Pareto front",
        zorder=4,
    )
    for marker, reference in zip("s^vP*X", references, strict=False):
        ax.scatter(
            [reference[x_key]],
            [reference["accuracy"]],
            marker=marker,
            s=70,
            color="#7f7f7f",
            label=f"{reference['name']} (reference)",
            zorder=3,
        )
    _label_points(ax, list(candidates) + references, x_key)
    picked = [c for c in candidates if c["name"] == chosen]
    if picked:
        ax.scatter(
            [picked[0][x_key]],
            [picked[0]["accuracy"]],
            s=260,
            facecolors="none",
            edgecolors="#2ca02c",
            linewidths=2,
            label="chosen",
            zorder=5,
        )
    values = [p[x_key] for p in list(candidates) + references]
    if min(values) > 0 and max(values) / min(values) > 5:
        ax.set_xscale("log")
    ax.set_xlabel(_AXIS_LABELS.get(x_key, x_key))
    ax.set_ylabel("test accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _label_points(ax, points, x_key):
    """Names every point; labels of points that (nearly) coincide are stacked, not overprinted."""
    x_span = (max(p[x_key] for p in points) - min(p[x_key] for p in points)) or 1.0
    y_span = (max(p["accuracy"] for p in points) - min(p["accuracy"] for p in points)) or 1.0
    placed = []
    for point in points:
        x, y = point[x_key], point["accuracy"]
        near = sum(abs(x - px) < 0.03 * x_span and abs(y - py) < 0.03 * y_span for px, py in placed)
        placed.append((x, y))
        ax.annotate(
            point["name"],
            (x, y),
            textcoords="offset points",
            xytext=(6, 4 - 11 * near),
            fontsize=8,
        )


def plot_training_curves(histories, path, keys=None):
    """Plots every loss term and metric of several training runs, one panel per term.

    Args:
        histories: ``{run_name: {term: [value per epoch]}}``, e.g. ``History.history`` of each
            ``Distiller.fit`` (``loss``, ``hard_loss``, ``logits_kd``, ``accuracy``, ...).
        path: Where to write the PNG; its directory must exist.
        keys: The terms to plot, in order; ``None`` plots every term any run has.

    Returns:
        ``path``.

    Raises:
        ValueError: If no run has any term to plot.

    Example:
        >>> plot_training_curves({"kd": history.history}, "training_curves.png")
        'training_curves.png'
    """
    if keys is None:
        keys = list(dict.fromkeys(k for h in histories.values() for k in h if h[k]))
    keys = [k for k in keys if any(h.get(k) for h in histories.values())]
    if not keys:
        raise ValueError(
            f"histories must hold at least one term with values, received: {list(histories)}"
        )
    plt = _pyplot()
    columns = min(3, len(keys))
    rows = math.ceil(len(keys) / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(4.2 * columns, 3.0 * rows), dpi=100, squeeze=False
    )
    for ax, key in zip(axes.ravel(), keys, strict=False):
        for run, history in histories.items():
            values = history.get(key)
            if values:
                ax.plot(range(1, len(values) + 1), values, marker=".", label=run)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("epoch", fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(keys) :]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return os.fspath(path)
