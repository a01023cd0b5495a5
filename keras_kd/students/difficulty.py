"""Compute by difficulty: spend more compute only on inputs the cheap stages are unsure about.

A *stage* is an exit of a ``keras_kd.students.EarlyExit`` or a width of a
``keras_kd.students.SlimmableModel``. Stages are tried from the cheapest; an input stops at the
first stage whose largest softmax probability reaches the threshold, and at the last otherwise.
Sweeping the threshold traces the accuracy-compute curve.
"""

import numpy as np

from keras_kd._checks import check_number

DEFAULT_THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.01)


def first_confident(logits, threshold):
    """Index of the first stage whose top softmax probability is >= ``threshold``, else the last.

    Paper: Teerapittayanon, McDanel & Kung (2016), "BranchyNet: Fast Inference via Early Exiting
    from Deep Neural Networks" (confidence-based exit; BranchyNet thresholds the entropy, this
    the top probability).

    Args:
        logits: Array ``(N, stages, classes)`` of logits, stages in the order they are tried.
        threshold: Number >= 0: 0 stops every input at stage 0, anything above 1 at the last.

    Returns:
        Int array ``(N,)``.

    Raises:
        ValueError: If ``threshold`` is not a finite number >= 0 or ``logits`` is not rank 3.

    Example:
        >>> first_confident(np.zeros([4, 3, 10]), threshold=0.5)
        array([2, 2, 2, 2])
    """
    threshold = check_number("threshold", threshold)
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 3:
        raise ValueError(
            f"logits must have shape (N, stages, classes), received: shape {logits.shape}"
        )
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    confidence = (shifted / shifted.sum(axis=-1, keepdims=True)).max(axis=-1)
    confident = confidence >= threshold
    confident[:, -1] = True
    return confident.argmax(axis=1)


def cascade_curve(logits, y, stage_macs, thresholds=DEFAULT_THRESHOLDS):
    """Accuracy and average compute of a confidence cascade for each threshold.

    Paper: Teerapittayanon, McDanel & Kung (2016), "BranchyNet: Fast Inference via Early Exiting
    from Deep Neural Networks".

    Args:
        logits: Array ``(N, stages, classes)``: every stage's logits for every input.
        y: Integer class ids ``(N,)``.
        stage_macs: MACs spent on an input that stops at each stage (cumulative: it includes the
            stages tried before), non-decreasing, one per stage.
        thresholds: Thresholds >= 0 to sweep.

    Returns:
        A list of dicts, one per threshold in the given order: ``threshold``, ``accuracy``,
        ``average_macs`` and ``stage_fractions`` (the fraction of inputs stopping at each stage).

    Raises:
        ValueError: If the shapes disagree, ``stage_macs`` decreases, or a threshold is negative.

    Example:
        >>> curve = cascade_curve(logits, y_test, [1000, 3000, 9000], thresholds=[0.0, 0.9, 1.01])
    """
    logits = np.asarray(logits)
    y = np.asarray(y).reshape(-1)
    stage_macs = np.asarray(stage_macs, dtype=np.float64)
    if logits.ndim != 3 or len(logits) != len(y) or logits.shape[1] != len(stage_macs):
        raise ValueError(
            "logits (N, stages, classes), y (N,) and stage_macs (stages,) must agree, received: "
            f"logits {logits.shape}, y {y.shape}, stage_macs {stage_macs.shape}"
        )
    if np.any(np.diff(stage_macs) < 0):
        raise ValueError(
            f"stage_macs must not decrease from stage to stage, received: {stage_macs.tolist()}"
        )
    correct = logits.argmax(axis=-1) == y[:, None]
    points = []
    for threshold in thresholds:
        stage = first_confident(logits, threshold)
        fractions = np.bincount(stage, minlength=len(stage_macs)) / len(y)
        points.append(
            {
                "threshold": float(threshold),
                "accuracy": float(np.mean(correct[np.arange(len(y)), stage])),
                "average_macs": float(np.mean(stage_macs[stage])),
                "stage_fractions": fractions.tolist(),
            }
        )
    return points


def exit_curve(early_exit, x, y, thresholds=DEFAULT_THRESHOLDS, batch_size=256):
    """``cascade_curve`` of an ``EarlyExit`` model: exits tried in depth order.

    Paper: Teerapittayanon, McDanel & Kung (2016), "BranchyNet: Fast Inference via Early Exiting
    from Deep Neural Networks".

    Args:
        early_exit: A trained ``keras_kd.students.EarlyExit``.
        x: Inputs ``(N, *input_shape)``.
        y: Integer class ids ``(N,)``.
        thresholds: Thresholds >= 0 to sweep.
        batch_size: Batch size of the forward pass.

    Returns:
        The points of ``cascade_curve``, with ``EarlyExit.dynamic_macs()`` as the cost per exit.

    Example:
        >>> curve = exit_curve(early, x_test, y_test)
    """
    logits = early_exit.exit_logits(x, batch_size)
    return cascade_curve(logits, y, early_exit.dynamic_macs(), thresholds)


def width_curve(model, x, y, thresholds=DEFAULT_THRESHOLDS, batch_size=256):
    """``cascade_curve`` of a ``SlimmableModel``: the narrowest width first, wider while unsure.

    An input that escalates has run every narrower width before, so stopping at width ``k`` costs
    the MACs of widths ``0..k`` together.

    Paper: Yu, Yang, Xu, Yang & Huang (2018), "Slimmable Neural Networks".

    Args:
        model: A trained ``keras_kd.students.SlimmableModel``.
        x: Inputs ``(N, *input_shape)``.
        y: Integer class ids ``(N,)``.
        thresholds: Thresholds >= 0 to sweep.
        batch_size: Batch size of the forward pass.

    Returns:
        The points of ``cascade_curve`` (``stage_fractions`` per width, narrowest first).

    Example:
        >>> curve = width_curve(slimmable, x_test, y_test)
    """
    logits = model.width_logits(x, batch_size)
    return cascade_curve(logits, y, np.cumsum(model.width_macs()), thresholds)


def stage_points(logits, y, macs, labels):
    """Each stage alone (every input through it): accuracy and MACs, as points for the plot.

    Args:
        logits: Array ``(N, stages, classes)``.
        y: Integer class ids ``(N,)``.
        macs: MACs of each stage run alone.
        labels: A name per stage (e.g. ``"exit 0"``, ``"width 0.25"``).

    Returns:
        A list of dicts ``{"stage", "accuracy", "average_macs"}``.

    Raises:
        ValueError: If the lengths disagree.

    Example:
        >>> points = stage_points(logits, y_test, early.exit_macs(), ["exit 0", "exit 1", "exit 2"])
    """
    logits, y = np.asarray(logits), np.asarray(y).reshape(-1)
    if logits.ndim != 3 or not logits.shape[1] == len(macs) == len(labels):
        raise ValueError(
            f"logits {logits.shape}, macs ({len(macs)}) and labels ({len(labels)}) must have one "
            "entry per stage"
        )
    accuracy = (logits.argmax(axis=-1) == y[:, None]).mean(axis=0)
    return [
        {"stage": str(name), "accuracy": float(a), "average_macs": float(m)}
        for name, a, m in zip(labels, accuracy, macs)
    ]


def plot_accuracy_compute(curves, path, title="Accuracy vs compute"):
    """Writes a PNG of accuracy against average MACs per input, one line per curve.

    Args:
        curves: A list of points (dicts with ``accuracy`` and ``average_macs``, e.g. from
            ``exit_curve``), or a dict from a legend label to such a list.
        path: Where to write the PNG; its directory must exist.
        title: The plot's title.

    Returns:
        ``path``.

    Raises:
        ValueError: If there is nothing to plot or a point lacks ``accuracy`` or ``average_macs``.

    Example:
        >>> plot_accuracy_compute({"early exits": exit_curve(early, x_test, y_test)}, "curve.png")
    """
    series = curves if isinstance(curves, dict) else {"cascade": curves}
    if not series or any(not points for points in series.values()):
        raise ValueError(f"curves must hold at least one point per curve, received: {curves!r}")
    for points in series.values():
        for point in points:
            if "accuracy" not in point or "average_macs" not in point:
                raise ValueError(
                    f"each point needs 'accuracy' and 'average_macs', received: {point!r}"
                )
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    for label, points in series.items():
        ordered = sorted(points, key=lambda p: p["average_macs"])
        axes.plot(
            [p["average_macs"] for p in ordered],
            [p["accuracy"] for p in ordered],
            marker="o",
            linestyle="-" if "threshold" in ordered[0] else ":",
            label=label,
        )
        for point in ordered:
            tag = point.get("stage", point.get("threshold"))
            if tag is not None:
                axes.annotate(
                    f"{tag:g}" if isinstance(tag, float) else str(tag),
                    (point["average_macs"], point["accuracy"]),
                    fontsize=6,
                    xytext=(3, -8),
                    textcoords="offset points",
                )
    axes.set_xlabel("average MACs per input")
    axes.set_ylabel("accuracy")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
