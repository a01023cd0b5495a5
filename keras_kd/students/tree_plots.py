"""Pictures of a ``SoftDecisionTree``: every node's filter laid out as the tree, and one input's path.

Frosst & Hinton (2017) read a soft decision tree by looking at its node filters (each the size of
the input) and at the path an input takes. matplotlib is imported inside the functions, with the
``Agg`` back end, so importing keras_kd stays light and works without a display.
"""

import os

import numpy as np

_CELL_INCHES = 1.0
_MAX_WIDTH_INCHES = 40.0


def _check_tree(tree):
    from keras_kd.students.tree import SoftDecisionTree

    if not isinstance(tree, SoftDecisionTree):
        raise TypeError(f"tree must be a SoftDecisionTree, received: tree={tree!r}")


def _check_path(path):
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(directory):
        raise ValueError(
            f"the directory of path does not exist: {directory!r}, received: path={path!r}"
        )


def _image_shape(tree, image_shape):
    shape = tree.image_shape if image_shape is None else tuple(int(d) for d in image_shape)
    if int(np.prod(shape)) != int(np.prod(tree.image_shape)):
        raise ValueError(
            f"image_shape must hold {int(np.prod(tree.image_shape))} values (the tree's input "
            f"{tree.image_shape}), received: image_shape={image_shape!r}"
        )
    return shape


def _as_image(values, shape):
    """A 2-D (or RGB) array to show for a flat vector reshaped to ``shape``."""
    image = np.asarray(values, np.float32).reshape(shape)
    if image.ndim == 1 or (image.ndim == 2 and image.shape[1] == 1):  # a sequence: one row
        return image.reshape(1, -1)
    if image.ndim == 3 and image.shape[-1] == 3:
        low, high = image.min(), image.max()
        return (image - low) / max(high - low, 1e-12)
    if image.ndim == 3:
        return image.mean(axis=-1)
    return image.reshape(image.shape[0], -1)


def _show(ax, image, diverging):
    if image.ndim == 3:
        ax.imshow(image)
    elif diverging:
        limit = max(float(np.abs(image).max()), 1e-12)
        ax.imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
    else:
        ax.imshow(image, cmap="gray_r")
    ax.set_xticks([])
    ax.set_yticks([])


def _new_figure(width, height):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _filters_figure(tree, image_shape=None):
    """The figure ``plot_tree_filters`` saves: one axes per inner node, breadth-first order."""
    from matplotlib.lines import Line2D

    _check_tree(tree)
    shape = _image_shape(tree, image_shape)
    depth = tree.tree.depth
    filters = tree.node_filters().reshape(2**depth - 1, -1)
    leaf_classes = tree.leaf_probabilities().argmax(axis=1)
    bottom = 2 ** (depth - 1)
    cell = min(_CELL_INCHES, _MAX_WIDTH_INCHES / bottom)
    width, height = max(bottom * cell, 4.0), depth * 1.35 * max(cell, 0.5) + 0.6
    figure = _new_figure(width, height)
    top = 1.0 - 0.45 / height  # room for the title
    row = top / (depth + 0.3)
    centers = {}
    for node in range(2**depth - 1):
        level = int(np.floor(np.log2(node + 1)))
        position = node - (2**level - 1)
        size = min(0.8 * row * height, 0.9 * width / 2**level, 2.5) / width
        tall = size * width / height
        x = (position + 0.5) / 2**level
        y = top - (level + 0.5) * row
        ax = figure.add_axes([x - size / 2, y - tall / 2, size, tall])
        _show(ax, _as_image(filters[node], shape), diverging=True)
        ax.set_title(str(node), fontsize=max(5, min(9, 60 * size)), pad=1)
        centers[node] = (x, y - tall / 2, y + tall / 2)
        if node:
            parent = centers[(node - 1) // 2]
            figure.add_artist(
                Line2D([parent[0], x], [parent[1], y + tall / 2 + 0.02 * row], lw=0.6, color="0.5")
            )
        if level == depth - 1:
            left, right = leaf_classes[2 * position], leaf_classes[2 * position + 1]
            figure.text(x, y - tall / 2 - 0.12 * row, f"{left} | {right}", ha="center", fontsize=7)
    figure.suptitle(
        f"Soft decision tree node filters (depth {depth}; red +, blue -; under the last row: the "
        "leaves' top classes, left | right)",
        fontsize=9,
    )
    return figure


def plot_tree_filters(tree, path, image_shape=None, dpi=100):
    """Writes a PNG of every inner node's learned filter ``w_i`` as an image, laid out as the tree.

    Node ``i`` is drawn at its place in the tree (root on top, titled with its breadth-first index)
    with a diverging color map (red positive, blue negative, white zero): an input that matches the
    red parts goes right. Under the last row of nodes, each node's two leaves are labelled with their
    most probable class.

    Paper: Frosst & Hinton (2017), "Distilling a Neural Network Into a Soft Decision Tree".

    Args:
        tree: A ``keras_kd.students.SoftDecisionTree``.
        path: Where to write the PNG; its directory must exist.
        image_shape: How to reshape one filter for display, e.g. ``(28, 28)``; default the tree's
            input shape. Must hold as many values as the input.
        dpi: Resolution of the PNG.

    Returns:
        ``path``.

    Raises:
        TypeError: If ``tree`` is not a ``SoftDecisionTree``.
        ValueError: If ``image_shape`` has the wrong size or the directory of ``path`` is missing.

    Example:
        >>> plot_tree_filters(tree, "filters.png", image_shape=(8, 8))
        'filters.png'
    """
    _check_path(path)
    _filters_figure(tree, image_shape).savefig(path, dpi=dpi)
    return path


def _path_figure(tree, x, image_shape=None, class_names=None):
    """The figure ``plot_tree_path`` saves: input, the filters along the max path, the leaf."""
    _check_tree(tree)
    shape = _image_shape(tree, image_shape)
    x = np.asarray(x, np.float32)
    if x.shape != tree.image_shape:
        if x.shape[1:] != tree.image_shape or len(x) != 1:
            raise ValueError(
                f"x must be one example of shape {tree.image_shape} (or a batch of one), received "
                f"shape {x.shape}"
            )
        x = x[0]
    depth = tree.tree.depth
    paths = tree.path_probabilities(x)[0]
    branches = tree.branch_probabilities(x)[0]
    filters = tree.node_filters().reshape(2**depth - 1, -1)
    leaf = int(paths.argmax())
    distribution = tree.leaf_probabilities()[leaf]
    mixture = paths @ tree.leaf_probabilities()
    names = list(class_names) if class_names is not None else [str(c) for c in range(len(mixture))]
    figure = _new_figure(2.0 * (depth + 2) + 1.0, 2.8)
    axes = figure.subplots(1, depth + 2, gridspec_kw={"width_ratios": [1] * (depth + 1) + [1.8]})
    _show(axes[0], _as_image(x, shape), diverging=False)
    axes[0].set_title("input", fontsize=9)
    node = 0
    for level in range(depth):
        goes_right = (leaf >> (depth - level - 1)) & 1
        taken = branches[node] if goes_right else 1.0 - branches[node]
        _show(axes[level + 1], _as_image(filters[node], shape), diverging=True)
        side = "right" if goes_right else "left"
        axes[level + 1].set_title(f"node {node}\n{side} p={taken:.2f}", fontsize=9)
        node = 2 * node + 1 + goes_right
    bars = axes[-1]
    positions = np.arange(len(distribution))
    bars.bar(positions - 0.2, distribution, width=0.4, label=f"leaf {leaf}")
    bars.bar(positions + 0.2, mixture, width=0.4, label="mixture")
    bars.set_xticks(positions)
    bars.set_xticklabels(names, fontsize=7, rotation=90 if len(names) > 12 else 0)
    bars.set_ylim(0, 1)
    bars.legend(fontsize=7)
    bars.set_title(f"leaf {leaf}, path P={paths[leaf]:.2f}", fontsize=9)
    figure.tight_layout()
    return figure


def plot_tree_path(tree, x, path, image_shape=None, class_names=None, dpi=100):
    """Writes a PNG of the most probable path one input takes through the tree.

    From left to right: the input, the filter of every node on the path with the branch taken and
    its probability, and the class distribution of the leaf the path ends in beside the tree's
    mixture prediction (the path probability of that leaf in the title).

    Paper: Frosst & Hinton (2017), "Distilling a Neural Network Into a Soft Decision Tree".

    Args:
        tree: A ``keras_kd.students.SoftDecisionTree``.
        x: One example of the tree's input shape (or a batch of one).
        path: Where to write the PNG; its directory must exist.
        image_shape: How to reshape the input and the filters for display; default the input shape.
        class_names: Names for the classes on the bar chart; default their indices.
        dpi: Resolution of the PNG.

    Returns:
        ``path``.

    Raises:
        TypeError: If ``tree`` is not a ``SoftDecisionTree``.
        ValueError: If ``x`` is not one example, ``image_shape`` has the wrong size, or the
            directory of ``path`` is missing.

    Example:
        >>> plot_tree_path(tree, x_test[0], "path.png", image_shape=(8, 8))
        'path.png'
    """
    _check_path(path)
    _path_figure(tree, x, image_shape, class_names).savefig(path, dpi=dpi)
    return path
