"""Slimmable layers: Dense, Conv2D and batch normalization that run at a width multiplier."""

import math

from keras_kd._checks import check_fraction
from keras_kd._compat import keras, tf

DEFAULT_WIDTHS = (0.25, 0.5, 0.75, 1.0)


def active_units(units, width):
    """Units a layer of ``units`` keeps at ``width``: ``max(1, floor(units * width + 0.5))``.

    The first ``active_units(units, width)`` units (and their weights) are the ones a slimmable
    layer runs at ``width`` (Yu et al. 2018, "Slimmable Neural Networks"), and the units of the
    plain layer ``at_width`` builds.

    Args:
        units: The layer's full number of units or filters.
        width: Width multiplier in (0, 1].

    Returns:
        The number of units kept, at least 1.

    Example:
        >>> active_units(16, 0.25)
        4
    """
    return max(1, int(math.floor(units * width + 0.5)))


class _Slimmable:
    """What the slimmable Dense and Conv2D share: the active units, bias and activation, config."""

    slimmable = True

    def _active(self, units, width):
        return active_units(units, width) if self.slim_output else units

    def _bias_and_activation(self, outputs, out):
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, self.bias[:out])
        return self.activation(outputs) if self.activation is not None else outputs

    def get_config(self):
        return {**super().get_config(), "slim_output": self.slim_output}


@keras.utils.register_keras_serializable(package="keras_kd")
class SlimmableDense(_Slimmable, keras.layers.Dense):
    """A Dense layer whose first ``active_units(units, width)`` units run at a width multiplier.

    The kernel is sliced to the incoming features (the previous layer's active units) and to the
    active outputs, so every width shares the first units' weights.

    Paper: Yu, Yang, Xu, Yang & Huang (2018), "Slimmable Neural Networks".

    Args:
        units: Units at full width (> 0).
        slim_output: Whether the outputs shrink with the width; ``False`` for the logits layer.
        **kwargs: Passed to ``keras.layers.Dense`` (``activation``, ``use_bias``, ``name``, ...).

    Raises:
        ValueError: If ``units`` is not a positive integer.

    Example:
        >>> layer = SlimmableDense(64, activation="relu")
        >>> half = layer(tf.zeros([2, 32]), width=0.5)  # shape (2, 32)
    """

    def __init__(self, units, slim_output=True, **kwargs):
        super().__init__(units, **kwargs)
        self.slim_output = bool(slim_output)

    def build(self, input_shape):
        super().build(input_shape)
        self.input_spec = keras.layers.InputSpec(min_ndim=2)  # narrower inputs at small widths

    def call(self, inputs, width=1.0):
        out = self._active(self.units, width)
        outputs = tf.matmul(inputs, self.kernel[: inputs.shape[-1], :out])
        return self._bias_and_activation(outputs, out)


@keras.utils.register_keras_serializable(package="keras_kd")
class SlimmableConv2D(_Slimmable, keras.layers.Conv2D):
    """A Conv2D layer whose first ``active_units(filters, width)`` filters run at a given width.

    The kernel is sliced to the incoming channels and to the active filters; channels-last, no
    groups.

    Paper: Yu, Yang, Xu, Yang & Huang (2018), "Slimmable Neural Networks".

    Args:
        filters: Filters at full width (> 0).
        kernel_size: As for ``keras.layers.Conv2D``.
        slim_output: Whether the filters shrink with the width.
        **kwargs: Passed to ``keras.layers.Conv2D`` (``strides``, ``padding``, ``activation``, ...).

    Raises:
        ValueError: If ``data_format`` is channels-first or ``groups`` is not 1.

    Example:
        >>> layer = SlimmableConv2D(16, 3, padding="same")
        >>> quarter = layer(tf.zeros([1, 8, 8, 1]), width=0.25)  # 4 channels
    """

    def __init__(self, filters, kernel_size, slim_output=True, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        if self.data_format != "channels_last" or self.groups != 1:
            raise ValueError(
                "SlimmableConv2D needs data_format='channels_last' and groups=1, received: "
                f"data_format={self.data_format!r}, groups={self.groups!r}"
            )
        self.slim_output = bool(slim_output)

    def build(self, input_shape):
        super().build(input_shape)
        self.input_spec = keras.layers.InputSpec(ndim=4)  # narrower inputs at small widths

    def call(self, inputs, width=1.0):
        out = self._active(self.filters, width)
        outputs = tf.nn.conv2d(
            inputs,
            self.kernel[:, :, : inputs.shape[-1], :out],
            strides=self.strides,
            padding=self.padding.upper(),
            dilations=self.dilation_rate,
        )
        return self._bias_and_activation(outputs, out)


@keras.utils.register_keras_serializable(package="keras_kd")
class SwitchableBatchNormalization(keras.layers.Layer):
    """Batch normalization with private statistics and affine weights for each width.

    Mean and variance differ between widths, so sharing them breaks the narrow models; one
    ``BatchNormalization`` per width, of that width's channel count, fixes it.

    Paper: Yu, Yang, Xu, Yang & Huang (2018), "Slimmable Neural Networks" (switchable BN).

    Args:
        widths: The widths the model runs at, each in (0, 1].
        momentum: Moving-average momentum of every width's normalization.
        epsilon: Added to the variance.
        **kwargs: Passed to ``keras.layers.Layer`` (``name``).

    Raises:
        ValueError: If a width is outside (0, 1]; at call time, if ``width`` is not in ``widths``.

    Example:
        >>> norm = SwitchableBatchNormalization(widths=[0.5, 1.0])
        >>> y = norm(tf.zeros([2, 4, 4, 8]), width=1.0)
    """

    slimmable = True

    def __init__(self, widths=DEFAULT_WIDTHS, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.widths = check_widths(widths)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.norms = []

    def build(self, input_shape):
        channels = int(input_shape[-1])
        for width in self.widths:
            norm = keras.layers.BatchNormalization(
                momentum=self.momentum, epsilon=self.epsilon, name=f"bn_{width:g}"
            )
            norm.build((*input_shape[:-1], active_units(channels, width)))
            self.norms.append(norm)
        super().build(input_shape)

    def call(self, inputs, width=1.0, training=None):
        if width not in self.widths:
            raise ValueError(
                f"{self.name} has statistics for widths {list(self.widths)} only, received: "
                f"width={width!r}"
            )
        return self.norms[self.widths.index(width)](inputs, training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "widths": list(self.widths),
            "momentum": self.momentum,
            "epsilon": self.epsilon,
        }


def check_widths(widths):
    """Returns ``widths`` as a sorted tuple of distinct floats in (0, 1] that includes 1.0."""
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
        raise ValueError(f"widths must be a list of numbers in (0, 1], received: widths={widths!r}")
    values = [check_fraction("widths", w, "(0, 1]") for w in widths]
    if not values or len(set(values)) != len(values) or 1.0 not in values:
        raise ValueError(
            "widths must be distinct numbers in (0, 1] including 1.0 (the full model), "
            f"received: widths={list(widths)!r}"
        )
    return tuple(sorted(values))
