"""Slimmable networks: one set of weights at several widths, trained by the sandwich rule."""

import numpy as np

from keras_kd._checks import check_fraction, check_positive
from keras_kd._compat import keras, tf
from keras_kd.losses import _ops
from keras_kd.students._self_training import SelfTrainingModel
from keras_kd.students.macs import count_macs
from keras_kd.students.slimmable_layers import (
    DEFAULT_WIDTHS,
    SlimmableConv2D,
    SlimmableDense,
    SwitchableBatchNormalization,
    active_units,
    check_widths,
)
from keras_kd.training_step import StepOutputs

_WIDTH_FREE = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.Dropout,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
)


@keras.utils.register_keras_serializable(package="keras_kd")
class SlimmableModel(SelfTrainingModel):
    """A chain of layers that runs at every width in ``widths``, trained by the sandwich rule.

    ``model(x, width=w)`` runs the first ``active_units(units, w)`` units of every slimmable layer
    (``SlimmableDense``, ``SlimmableConv2D``, ``SwitchableBatchNormalization``); the other layers
    must not depend on the width (pooling, activations, dropout). Each training step (Yu & Huang
    2019) runs the widest model on the labels, the narrowest and ``num_random`` randomly chosen
    other widths distilled from the widest's stopped logits in place, and applies the summed
    gradients once:

        loss = CE(y, z_max)
               + sum_{w in {min, random}} T^2 KL(softmax(stop(z_max)/T) || softmax(z_w/T))

    ``evaluate`` reports each width's accuracy. ``at_width(model, w)`` returns a plain Keras model
    of that width with copied weights, for export.

    Paper: Yu, Yang, Xu, Yang & Huang (2018), "Slimmable Neural Networks"; Yu & Huang (2019),
    "Universally Slimmable Networks and Improved Training Techniques" (sandwich rule, inplace
    distillation).

    Args:
        layers: Layers applied in order; the last slimmable one must have ``slim_output=False``
            (the logits keep every class). ``Flatten`` may appear only before the first slimmable
            layer (flattened channels do not slice by width); use global pooling after convolutions.
        input_shape: Shape of one example, e.g. ``(8, 8, 1)``.
        widths: Distinct widths in (0, 1] including 1.0. Default ``(0.25, 0.5, 0.75, 1.0)``.
        num_random: Random widths per step besides the widest and the narrowest (>= 0).
        temperature: Temperature ``T`` > 0 of the inplace distillation (1 in the paper).
        **kwargs: Passed to ``keras.Model`` (``name``).

    Raises:
        ValueError: For an empty or unsupported layer list, a bad width, a slimmed logits layer,
            or a number out of range, naming the argument and value.

    Example:
        >>> model = make_slimmable_cnn((8, 8, 1), 10, width=16)
        >>> model.compile("adam")
        >>> model.fit(x_train, y_train, epochs=5, verbose=0)
        >>> small = at_width(model, 0.25)  # a plain keras.Sequential
    """

    compile_refusal = "trains with the sandwich rule and reports each width's accuracy"

    def __init__(
        self, layers, input_shape, widths=DEFAULT_WIDTHS, num_random=1, temperature=1.0, **kwargs
    ):
        kwargs.setdefault("name", "slimmable")
        super().__init__(**kwargs)
        self.widths = check_widths(widths)
        self.chain = _check_layers(layers)
        self.example_shape = tuple(int(d) for d in input_shape)
        if isinstance(num_random, bool) or not isinstance(num_random, int) or num_random < 0:
            raise ValueError(
                f"num_random must be an integer >= 0, received: num_random={num_random!r}"
            )
        self.num_random = num_random
        self.temperature = check_positive("temperature", temperature)
        for layer in self.chain:
            if isinstance(layer, SwitchableBatchNormalization) and layer.widths != self.widths:
                raise ValueError(
                    f"layer {layer.name!r} has widths {list(layer.widths)} but the model runs at "
                    f"widths={list(self.widths)}; give both the same widths"
                )
        self._track(scored=[f"width_{w:g}" for w in self.widths])
        self(tf.zeros((1, *self.example_shape)), training=False)

    def call(self, inputs, training=None, width=None):
        width = 1.0 if width is None else check_fraction("width", width, "(0, 1]")
        return self._run(inputs, width, training, self.chain)

    @staticmethod
    def _run(x, width, training, layers):
        """``layers`` applied in order at ``width``."""
        for layer in layers:
            if isinstance(layer, SwitchableBatchNormalization):
                x = layer(x, width=width, training=training)
            elif getattr(layer, "slimmable", False):
                x = layer(x, width=width)
            else:
                x = layer(x, training=training)
        return x

    def _step_terms(self, x, y, sample_weight, targets, training):
        widest, narrowest = self.widths[-1], self.widths[0]
        logits = tf.cast(self(x, training=training, width=widest), tf.float32)  # mixed precision
        terms = [(None, 1.0, self.hard_term(y, logits, sample_weight))]
        if not training:  # every width's accuracy
            scored = {f"width_{w:g}": self(x, training=False, width=w) for w in self.widths[:-1]}
            return StepOutputs(terms, None, {**scored, f"width_{widest:g}": logits})
        # The sandwich rule: the narrowest and num_random middle widths learn from the widest.
        target = tf.stop_gradient(logits)
        if narrowest != widest:
            terms.append((None, 1.0, self._inplace(target, x, narrowest)))
        middle = self.widths[1:-1]
        for _ in range(self.num_random if middle else 0):
            pick = tf.random.uniform([], 0, len(middle), dtype=tf.int32)
            branches = [lambda w=w: self._inplace(target, x, w) for w in middle]
            terms.append((None, 1.0, tf.switch_case(pick, branches)))
        return StepOutputs(terms, None, {f"width_{widest:g}": logits})

    def _inplace(self, target, x, width):
        student = tf.cast(self(x, training=True, width=width), tf.float32)
        return _ops.soft_target_loss(target, student, self.temperature)

    def width_logits(self, x, batch_size=256):
        """Every width's logits on ``x`` as numpy, shape ``(N, len(widths), classes)``."""
        x = np.asarray(x, dtype=np.float32)
        per_width = []
        for width in self.widths:
            parts = [
                self(x[i : i + batch_size], training=False, width=width).numpy()
                for i in range(0, len(x), batch_size)
            ]
            per_width.append(np.concatenate(parts))
        return np.stack(per_width, axis=1)

    def calibrate_batch_norm(self, x, batch_size=256):
        """Sets every width's batch-normalization statistics to their exact values on ``x``.

        Moving averages lag behind the weights, and the widths that a step samples at random are
        updated only on some steps, so after a short training their statistics are off; Yu & Huang
        (2019) recompute them after training ("BN calibration"). Layers are calibrated in order,
        each on the outputs of the already calibrated layers before it. Call it after ``fit``
        with a few thousand training inputs.

        Args:
            x: Training inputs ``(N, *input_shape)``, N >= 1.
            batch_size: Batch size of the forward passes.

        Returns:
            ``self``.

        Raises:
            ValueError: If ``x`` is empty.
        """
        x = np.asarray(x, dtype=np.float32)
        if len(x) == 0:
            raise ValueError("x must hold at least one example, received: an empty array")
        for width in self.widths:
            for position, layer in enumerate(self.chain):
                if not isinstance(layer, SwitchableBatchNormalization):
                    continue
                total, squares, count = 0.0, 0.0, 0
                for start in range(0, len(x), batch_size):
                    h = self._prefix(x[start : start + batch_size], width, position)
                    h = h.reshape(-1, h.shape[-1]).astype(np.float64)
                    total, squares, count = (
                        total + h.sum(0),
                        squares + (h * h).sum(0),
                        count + len(h),
                    )
                mean = total / count
                norm = layer.norms[layer.widths.index(width)]
                norm.moving_mean.assign(mean.astype(np.float32))
                norm.moving_variance.assign(
                    np.maximum(squares / count - mean**2, 0.0).astype(np.float32)
                )
        return self

    def _prefix(self, x, width, stop):
        """The output of ``chain[:stop]`` at ``width`` in inference mode, as numpy."""
        return np.asarray(self._run(x, width, False, self.chain[:stop]))

    def width_macs(self):
        """MACs of one example at each width (``count_macs`` of ``at_width``), narrowest first."""
        return [count_macs(at_width(self, width)) for width in self.widths]

    def get_config(self):
        return {
            "name": self.name,
            "layers": [keras.saving.serialize_keras_object(layer) for layer in self.chain],
            "input_shape": list(self.example_shape),
            "widths": list(self.widths),
            "num_random": self.num_random,
            "temperature": self.temperature,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["layers"] = [
            keras.saving.deserialize_keras_object(layer, custom_objects=custom_objects)
            for layer in config["layers"]
        ]
        return cls(**config)


def at_width(model, width):
    """A plain Keras model of ``model`` at ``width``: ordinary Dense/Conv2D layers with fewer units.

    Weights are copied (the first active units of each slimmable layer; the width's own batch
    normalization), so the result predicts what ``model(x, width=width)`` does and exports with
    ``keras_kd.export.to_tflite`` like any student. Its parameter count is that of the width: for a
    Dense ``in_w * out_w + out_w``, for a Conv2D ``kh * kw * in_w * out_w + out_w``, for a batch
    normalization ``4 * channels_w``, with ``x_w = active_units(x, width)`` (the input channels and
    the logits' classes stay whole).

    Paper: Yu, Yang, Xu, Yang & Huang (2018), "Slimmable Neural Networks".

    Args:
        model: A ``SlimmableModel``.
        width: One of ``model.widths`` (any width in (0, 1] when the model has no batch
            normalization).

    Returns:
        A new ``keras.Sequential`` named ``slimmable_<width>``.

    Raises:
        ValueError: If ``model`` is not a ``SlimmableModel`` or it cannot run at ``width``.

    Example:
        >>> quarter = at_width(model, 0.25)
        >>> quarter.count_params() < model.count_params()
        True
    """
    if not isinstance(model, SlimmableModel):
        raise ValueError(f"model must be a SlimmableModel, received: model={model!r}")
    width = check_fraction("width", width, "(0, 1]")
    if width not in model.widths and any(
        isinstance(layer, SwitchableBatchNormalization) for layer in model.chain
    ):
        raise ValueError(
            f"width must be one of the widths the model's batch normalization knows, "
            f"{list(model.widths)}, received: width={width!r}"
        )
    plain = keras.Sequential([keras.Input(model.example_shape)], name=f"slimmable_{width:g}")
    copies = []
    for layer in model.chain:
        if isinstance(layer, (SlimmableDense, SlimmableConv2D)):
            units = layer.units if isinstance(layer, SlimmableDense) else layer.filters
            out = active_units(units, width) if layer.slim_output else units
            config = {**layer.get_config(), "name": layer.name}
            config.pop("slim_output")
            config["units" if isinstance(layer, SlimmableDense) else "filters"] = out
            base = keras.layers.Dense if isinstance(layer, SlimmableDense) else keras.layers.Conv2D
            plain.add(base.from_config(config))
            in_channels = plain.layers[-1].input_shape[-1]
            weights = [layer.kernel.numpy()[..., :in_channels, :out]]
            weights += [layer.bias.numpy()[:out]] if layer.use_bias else []
            copies.append((plain.layers[-1], weights))
        elif isinstance(layer, SwitchableBatchNormalization):
            norm = layer.norms[layer.widths.index(width)]
            config = {**norm.get_config(), "name": layer.name}
            plain.add(keras.layers.BatchNormalization.from_config(config))
            copies.append((plain.layers[-1], norm.get_weights()))
        else:
            plain.add(layer.__class__.from_config(layer.get_config()))
    for copy, weights in copies:
        copy.set_weights(weights)
    return plain


def make_slimmable_cnn(input_shape, num_classes, width=16, widths=DEFAULT_WIDTHS, **kwargs):
    """A slimmable CNN like ``examples.models.make_student``, with switchable batch normalization.

    Two 3x3 convolution blocks (``width`` and ``2 * width`` filters at full width, each followed by
    switchable batch normalization (momentum 0.9, so that the statistics settle within the few
    hundred steps of a small dataset) and ReLU, max pooling between), global average pooling, and
    logits.

    Paper: Yu, Yang, Xu, Yang & Huang (2018), "Slimmable Neural Networks".

    Args:
        input_shape: Shape of one image ``(H, W, C)``.
        num_classes: Number of output logits.
        width: Filters of the first block at full width.
        widths: The widths the model runs at.
        **kwargs: Passed to ``SlimmableModel`` (``num_random``, ``temperature``, ``name``).

    Returns:
        A built ``SlimmableModel``.

    Raises:
        ValueError: If ``input_shape`` is not ``(H, W, C)`` or a width is out of range.

    Example:
        >>> model = make_slimmable_cnn((8, 8, 1), 10, width=16)
    """
    if len(input_shape) != 3:
        raise ValueError(
            f"input_shape must be (H, W, C), received: input_shape={tuple(input_shape)!r}"
        )
    widths = check_widths(widths)
    layers = [
        SlimmableConv2D(width, 3, padding="same", use_bias=False, name="sl_block1"),
        SwitchableBatchNormalization(widths, momentum=0.9, name="sl_norm1"),
        keras.layers.ReLU(name="sl_relu1"),
        keras.layers.MaxPooling2D(2, name="sl_pool1"),
        SlimmableConv2D(2 * width, 3, padding="same", use_bias=False, name="sl_block2"),
        SwitchableBatchNormalization(widths, momentum=0.9, name="sl_norm2"),
        keras.layers.ReLU(name="sl_relu2"),
        keras.layers.GlobalAveragePooling2D(name="sl_global_pool"),
        SlimmableDense(num_classes, slim_output=False, name="sl_logits"),
    ]
    return SlimmableModel(layers, input_shape, widths=widths, **kwargs)


def _check_layers(layers):
    if (
        isinstance(layers, keras.layers.Layer)
        or not isinstance(layers, (list, tuple))
        or not layers
    ):
        raise ValueError(
            f"layers must be a non-empty list of Keras layers, received: layers={layers!r}"
        )
    seen_slimmable, last = False, None
    for layer in layers:
        if getattr(layer, "slimmable", False):
            seen_slimmable = True
            if isinstance(layer, (SlimmableDense, SlimmableConv2D)):
                last = layer
        elif isinstance(layer, keras.layers.Flatten) and not seen_slimmable:
            continue
        elif not isinstance(layer, _WIDTH_FREE):
            raise ValueError(
                f"layers may hold slimmable layers, layers that do not depend on the width "
                f"{[t.__name__ for t in _WIDTH_FREE]} and a Flatten before the first slimmable "
                f"layer; received: {type(layer).__name__} {layer.name!r} in layers"
            )
    if last is None or last.slim_output:
        raise ValueError(
            "layers must end their slimmable Dense/Conv2D layers with one of slim_output=False "
            f"(the logits keep every class), received: layers={[layer.name for layer in layers]}"
        )
    return list(layers)
