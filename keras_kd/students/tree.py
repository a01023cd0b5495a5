"""Soft decision tree student: a tree of sigmoid filters over the input with learned leaf distributions.

Frosst & Hinton (2017) distil a neural network into a soft binary decision tree: inner node ``i``
takes the right branch with probability ``p_i(x) = sigmoid(beta * (x . w_i + b_i))``, each leaf
holds a learned class distribution ``Q^l = softmax(phi^l)``, and the probability of reaching leaf
``l`` is the product of the branch probabilities along its path. The tree is easy to inspect: every
inner node is one filter the size of the input (``keras_kd.students.tree_plots`` draws them).

Nodes are numbered breadth first: the root is 0, the children of node ``i`` are ``2i + 1`` (left)
and ``2i + 2`` (right); leaf ``l`` is reached by the branches of the bits of ``l``, root first
(1 = right).
"""

import numpy as np

from keras_kd._checks import (
    check_choice,
    check_fraction,
    check_number,
    check_positive,
    check_positive_int,
)
from keras_kd._compat import keras, tf

INFERENCE_MODES = ("mixture", "max_path")
MAX_DEPTH = 10
_EPSILON = 1e-7


def _check_config(
    depth, num_classes, inverse_temperature, penalty_strength, penalty_decay, inference
):
    check_positive_int("depth", depth)
    check_positive_int("num_classes", num_classes, minimum=2)
    if depth > MAX_DEPTH:
        raise ValueError(
            f"depth must be <= {MAX_DEPTH} (a tree of depth d has 2**d leaves), received: depth={depth}"
        )
    check_positive("inverse_temperature", inverse_temperature)
    check_number("penalty_strength", penalty_strength)
    check_fraction("penalty_decay", penalty_decay, "(0, 1]")
    check_choice("inference", inference, INFERENCE_MODES)


def _path_masks(depth):
    """``(right, left)`` 0/1 matrices, shape ``(inner nodes, nodes below)``: entry ``[a, n]`` is 1 when
    the path from the root to ``n`` leaves ancestor ``a`` by its right (left) branch. Returned for the
    leaves (``n`` a leaf) and for the inner nodes (``n`` an inner node; the root has no ancestor)."""
    inner = 2**depth - 1

    def masks(level_of, position_of, count):
        right, left = np.zeros((inner, count), np.float32), np.zeros((inner, count), np.float32)
        for n in range(count):
            level, position = level_of(n), position_of(n)
            for d in range(level):
                ancestor = 2**d - 1 + (position >> (level - d))
                goes_right = (position >> (level - d - 1)) & 1
                (right if goes_right else left)[ancestor, n] = 1.0
        return right, left

    leaves = masks(lambda n: depth, lambda n: n, 2**depth)
    levels = np.floor(np.log2(np.arange(inner) + 1)).astype(int)
    nodes = masks(lambda n: levels[n], lambda n: n - (2 ** levels[n] - 1), inner)
    return leaves, nodes, levels


@keras.utils.register_keras_serializable(package="keras_kd")
class SoftDecisionTreeLayer(keras.layers.Layer):
    """The soft decision tree over flat features ``(batch, features)``; outputs log-probabilities.

    In training the output is the log of the mixture of the leaf distributions weighted by the path
    probabilities, and the balancing penalty is added with ``add_loss``:

        penalty = -lambda * sum_i decay**depth(i) * (0.5 * log(alpha_i) + 0.5 * log(1 - alpha_i))

    where ``alpha_i = sum_x P^i(x) p_i(x) / sum_x P^i(x)`` over the batch, ``P^i(x)`` the probability
    of reaching node ``i``. It is smallest when every node sends half of what reaches it each way.
    In inference the output is the mixture (``inference="mixture"``) or the distribution of the most
    probable leaf (``"max_path"``). Logs are computed with ``log_softmax`` and ``logsumexp``, so they
    stay finite for saturated nodes.

    Paper: Frosst & Hinton (2017), "Distilling a Neural Network Into a Soft Decision Tree".

    Args:
        depth: Levels of inner nodes, in [1, ``MAX_DEPTH``]: ``2**depth - 1`` inner nodes and
            ``2**depth`` leaves.
        num_classes: Classes of each leaf distribution, >= 2.
        inverse_temperature: ``beta`` > 0 multiplying every node's logit; larger is harder routing.
        penalty_strength: ``lambda`` >= 0 of the balancing penalty; 0 adds none.
        penalty_decay: Factor in (0, 1] per level applied to the penalty (0.5: the paper's 2**-d).
        inference: ``"mixture"`` or ``"max_path"`` (the output outside training).
        **kwargs: Passed to ``keras.layers.Layer`` (``name``).

    Returns:
        Calling the layer on ``(batch, features)`` returns log-probabilities ``(batch, num_classes)``.

    Raises:
        ValueError: For an argument out of range, or inputs that are not rank 2.

    Example:
        >>> layer = SoftDecisionTreeLayer(depth=3, num_classes=10)
        >>> log_probs = layer(tf.zeros([2, 64]))
    """

    def __init__(
        self,
        depth,
        num_classes,
        inverse_temperature=1.0,
        penalty_strength=0.1,
        penalty_decay=0.5,
        inference="mixture",
        **kwargs,
    ):
        # Log path probabilities sum many small terms: float32 even under a mixed precision policy.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        _check_config(
            depth, num_classes, inverse_temperature, penalty_strength, penalty_decay, inference
        )
        self.depth = int(depth)
        self.num_classes = int(num_classes)
        self.inverse_temperature = float(inverse_temperature)
        self.penalty_strength = float(penalty_strength)
        self.penalty_decay = float(penalty_decay)
        self.inference = inference
        (leaf_right, leaf_left), (node_right, node_left), levels = _path_masks(self.depth)
        self._leaf_right, self._leaf_left = tf.constant(leaf_right), tf.constant(leaf_left)
        self._node_right, self._node_left = tf.constant(node_right), tf.constant(node_left)
        self._level_weights = tf.constant(self.penalty_decay**levels, tf.float32)

    def build(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank != 2 or input_shape[-1] is None:
            raise ValueError(
                f"{self.name}: inputs must be (batch, features) with known features, received "
                f"shape {input_shape}; flatten them first (SoftDecisionTree does)"
            )
        inner, leaves = 2**self.depth - 1, 2**self.depth
        self.kernel = self.add_weight(
            "kernel", (input_shape[-1], inner), initializer="glorot_uniform"
        )
        self.bias = self.add_weight("bias", (inner,), initializer="zeros")
        self.leaf_logits = self.add_weight(
            "leaf_logits",
            (leaves, self.num_classes),
            initializer=keras.initializers.RandomNormal(0.0, 0.1),
        )
        super().build(input_shape)

    def branch_logits(self, inputs):
        """``beta * (x . w_i + b_i)`` for every inner node, shape ``(batch, inner nodes)``."""
        return self.inverse_temperature * (tf.matmul(inputs, self.kernel) + self.bias)

    def _log_branches(self, logits):
        # log sigmoid(-z), log sigmoid(z) as a log_softmax over (0, z): exact and finite for any z,
        # and a LOG_SOFTMAX builtin in TFLite (unlike softplus).
        both = tf.nn.log_softmax(tf.stack([tf.zeros_like(logits), logits], axis=-1), axis=-1)
        return both[..., 1], both[..., 0]

    def log_path_probabilities(self, inputs):
        """Log-probability of reaching each leaf, shape ``(batch, 2**depth)``."""
        log_right, log_left = self._log_branches(self.branch_logits(inputs))
        return tf.matmul(log_right, self._leaf_right) + tf.matmul(log_left, self._leaf_left)

    def call(self, inputs, training=None):
        logits = self.branch_logits(inputs)
        log_right, log_left = self._log_branches(logits)
        log_paths = tf.matmul(log_right, self._leaf_right) + tf.matmul(log_left, self._leaf_left)
        log_leaves = tf.nn.log_softmax(self.leaf_logits, axis=-1)
        if training and self.penalty_strength > 0:
            self.add_loss(self._penalty(logits, log_right, log_left))
        if training or self.inference == "mixture":
            return tf.reduce_logsumexp(log_paths[:, :, None] + log_leaves[None], axis=1)
        return tf.gather(log_leaves, tf.argmax(log_paths, axis=-1))

    def _penalty(self, logits, log_right, log_left):
        reach = tf.exp(
            tf.matmul(log_right, self._node_right) + tf.matmul(log_left, self._node_left)
        )
        right = tf.sigmoid(logits)
        alpha = tf.reduce_sum(reach * right, axis=0) / tf.maximum(
            tf.reduce_sum(reach, axis=0), _EPSILON
        )
        alpha = tf.clip_by_value(alpha, _EPSILON, 1.0 - _EPSILON)
        balance = 0.5 * tf.math.log(alpha) + 0.5 * tf.math.log(1.0 - alpha)
        return -self.penalty_strength * tf.reduce_sum(self._level_weights * balance)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)[:-1].concatenate([self.num_classes])

    def get_config(self):
        return {
            **super().get_config(),
            "depth": self.depth,
            "num_classes": self.num_classes,
            "inverse_temperature": self.inverse_temperature,
            "penalty_strength": self.penalty_strength,
            "penalty_decay": self.penalty_decay,
            "inference": self.inference,
        }


@keras.utils.register_keras_serializable(package="keras_kd")
class SoftDecisionTree(keras.Model):
    """A soft decision tree classifier over the flattened input that outputs logits (log-probabilities).

    A functional ``keras.Model`` (``Flatten`` then ``SoftDecisionTreeLayer``), so it is built at
    construction and works wherever a student does: ``Distiller(student=tree, ...)`` with
    ``LogitsKD``, ``keras_kd.export.to_tflite`` and ``save``/``load_model``. The output is the log of
    the predicted class distribution: ``softmax`` of it gives that distribution back, so train with
    ``SparseCategoricalCrossentropy(from_logits=True)``. Training always uses the mixture of the
    leaves (the most probable leaf is not differentiable in the routing); the balancing penalty is
    in ``model.losses``, which ``fit`` and ``Distiller.fit`` add to the loss as regularization.
    ``inference`` chooses the output of ``predict`` / ``evaluate`` / ``call(training=False)``.

    Frosst & Hinton minimise the expected log-loss of the leaves; this tree minimises the log-loss
    of their mixture, which makes it an ordinary logits model for every Keras and keras_kd loss.

    Paper: Frosst & Hinton (2017), "Distilling a Neural Network Into a Soft Decision Tree".

    Args:
        depth: Levels of inner nodes, in [1, 10]; the paper uses 8 on MNIST.
        num_classes: Number of classes, >= 2.
        input_shape: Shape of one example, e.g. ``(28, 28, 1)``; every node filter has this shape.
        inverse_temperature: ``beta`` > 0 scaling each node's logit ``x . w_i + b_i``.
        penalty_strength: ``lambda`` >= 0 of the penalty that keeps nodes using both subtrees.
        penalty_decay: Per-level factor of the penalty in (0, 1]; 0.5 is the paper's ``2**-depth``.
        inference: ``"mixture"`` (path-weighted mixture of all leaves) or ``"max_path"`` (the leaf
            at the end of the most probable path, as the paper's interpretable prediction).
        name: Model name.
        trainable: Whether the weights are trainable.

    Raises:
        ValueError: If an argument is out of range, naming it and its value.

    Example:
        >>> tree = SoftDecisionTree(depth=4, num_classes=10, input_shape=(8, 8, 1))
        >>> distiller = keras_kd.Distiller(student=tree, teacher=teacher)
        >>> distiller.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> history = distiller.fit(x_train, y_train, epochs=10)
        >>> tree.path_probabilities(x_test[:5]).sum(axis=1)  # ones
    """

    def __init__(
        self,
        depth,
        num_classes,
        input_shape,
        inverse_temperature=1.0,
        penalty_strength=0.1,
        penalty_decay=0.5,
        inference="mixture",
        name="soft_decision_tree",
        trainable=True,
    ):
        _check_config(
            depth, num_classes, inverse_temperature, penalty_strength, penalty_decay, inference
        )
        shape = _check_input_shape(input_shape)
        inputs = keras.Input(shape, name="image")
        flat = keras.layers.Flatten(name="flatten")(inputs)
        outputs = SoftDecisionTreeLayer(
            depth,
            num_classes,
            inverse_temperature,
            penalty_strength,
            penalty_decay,
            inference,
            name="tree",
        )(flat)
        super().__init__(inputs, outputs, name=name, trainable=trainable)
        self.image_shape = shape

    @property
    def tree(self):
        """The ``SoftDecisionTreeLayer`` that holds the node filters and leaf parameters."""
        return self.get_layer("tree")

    def _flat(self, x):
        x = np.asarray(x, np.float32)
        if x.shape == self.image_shape:
            x = x[None]
        return tf.constant(x.reshape(len(x), -1))

    def leaf_probabilities(self):
        """Each leaf's class distribution ``softmax(phi^l)``, shape ``(2**depth, num_classes)``."""
        return tf.nn.softmax(self.tree.leaf_logits, axis=-1).numpy()

    def path_probabilities(self, x):
        """Probability of reaching each leaf for each input, shape ``(batch, 2**depth)``; rows sum to 1.

        Args:
            x: Inputs ``(batch, *input_shape)``, or one example of ``input_shape``.
        """
        return tf.exp(self.tree.log_path_probabilities(self._flat(x))).numpy()

    def branch_probabilities(self, x):
        """``p_i(x)``, the probability that inner node ``i`` sends ``x`` right, ``(batch, 2**depth - 1)``."""
        return tf.sigmoid(self.tree.branch_logits(self._flat(x))).numpy()

    def node_filters(self):
        """The inner nodes' filters ``w_i`` shaped like the input, ``(2**depth - 1, *input_shape)``."""
        kernel = self.tree.kernel.numpy()
        return kernel.T.reshape((kernel.shape[1], *self.image_shape))

    def get_config(self):
        # Flat constructor arguments, not Functional's graph config: from_config calls cls(**config).
        layer = self.tree
        return {
            "name": self.name,
            "trainable": self.trainable,
            "depth": layer.depth,
            "num_classes": layer.num_classes,
            "input_shape": list(self.image_shape),
            "inverse_temperature": layer.inverse_temperature,
            "penalty_strength": layer.penalty_strength,
            "penalty_decay": layer.penalty_decay,
            "inference": layer.inference,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


def _check_input_shape(input_shape):
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise ValueError(
            "input_shape must be a non-empty sequence of positive integers, received: "
            f"input_shape={input_shape!r}"
        )
    return shape
