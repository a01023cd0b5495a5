"""Early exits: classifier heads after intermediate layers, trained together, left by confidence."""

import numpy as np

from keras_kd import _labels
from keras_kd._checks import is_graph_model
from keras_kd._compat import keras, tf
from keras_kd.students._self_training import SelfTrainingModel
from keras_kd.students.difficulty import first_confident
from keras_kd.students.exit_loss import ExitDistillation
from keras_kd.students.macs import count_macs
from keras_kd.training_step import StepOutputs

_POOLS = {3: keras.layers.AveragePooling1D, 4: keras.layers.AveragePooling2D}


@keras.utils.register_keras_serializable(package="keras_kd")
class EarlyExit(SelfTrainingModel):
    """A model with exit heads after chosen layers; an input may leave at the first confident exit.

    Each name in ``exits`` gets a head on that layer's output: average pooling of the feature map
    down to a ``head_grid`` x ``head_grid`` grid (``head_grid`` positions for 1-D maps), flatten,
    and a Dense layer to the classes; the model's own output is the last exit. Calling
    the model returns every exit's logits stacked, shape ``(batch, len(exits) + 1, classes)``.
    ``fit`` minimizes ``ExitDistillation``: the sum of the exits' cross-entropies (BranchyNet's
    e1 + ... + eL) plus the final exit distilled into the earlier ones (Be Your Own Teacher).
    ``evaluate`` reports each exit's accuracy. An external teacher joins through
    ``keras_kd.Distiller`` (see ``ExitDistillation``), so that caching, augmentation and the
    NaN checks of the Distiller apply unchanged.

    At inference ``predict_dynamic(x, threshold)`` sends each input out at the first exit whose
    largest softmax probability reaches ``threshold``; ``exit_macs()`` and ``dynamic_macs()`` give
    the compute. ``exits_model()`` is a plain Keras model with every exit in one output tensor, and
    ``truncated(k)`` a plain model that stops at exit ``k``; both export with
    ``keras_kd.export.to_tflite``.

    Paper: Teerapittayanon, McDanel & Kung (2016), "BranchyNet: Fast Inference via Early Exiting
    from Deep Neural Networks"; Zhang et al. (2019), "Be Your Own Teacher: Improve the Performance
    of Convolutional Neural Networks via Self Distillation".

    Args:
        model: A built Functional or Sequential ``keras.Model`` with one input and one output of
            logits ``(batch, classes)``. Its layers are shared, not copied.
        exits: Non-empty list of distinct layer names of ``model``, in the order the model computes
            them, not including the output layer.
        head_grid: Grid size (>= 1) the exit heads pool feature maps to before their Dense layer;
            1 is global average pooling (cheapest, no spatial layout), 2 keeps a coarse layout.
        temperature: Self-distillation temperature ``T`` > 0.
        distillation_weight: Weight >= 0 of the self-distillation term (0: exits on labels only).
        **kwargs: Passed to ``keras.Model`` (``name``).

    Raises:
        ValueError: If ``model`` is not a built single-output graph model, ``exits`` is empty, holds
            an unknown, repeated, out-of-order or output layer name, or a number is out of range
            (``head_grid`` < 1, ``temperature`` <= 0, ``distillation_weight`` < 0).

    Example:
        >>> early = EarlyExit(make_student((8, 8, 1), 10), exits=["s_block1"])
        >>> early.compile("adam")
        >>> early.fit(x_train, y_train, epochs=5, verbose=0)
        >>> exit_index, logits = early.predict_dynamic(x_test, threshold=0.9)
    """

    compile_refusal = "trains with ExitDistillation and reports each exit's accuracy"

    def __init__(
        self, model, exits, head_grid=2, temperature=4.0, distillation_weight=1.0, **kwargs
    ):
        kwargs.setdefault("name", "early_exit")
        super().__init__(**kwargs)
        _check_backbone(model)
        self.backbone = model
        self.exits = _check_exits(model, exits)
        if isinstance(head_grid, bool) or not isinstance(head_grid, int) or head_grid < 1:
            raise ValueError(
                f"head_grid must be an integer >= 1, received: head_grid={head_grid!r}"
            )
        self.head_grid = head_grid
        self.exit_loss = ExitDistillation(temperature, distillation_weight, teacher_weight=0.0)
        self.temperature = self.exit_loss.temperature
        self.distillation_weight = self.exit_loss.distillation_weight
        num_classes = int(model.outputs[0].shape[-1])
        self.exit_pools, self.exit_flattens, self.exit_heads = [], [], []
        for index, name in enumerate(self.exits):
            shape = model.get_layer(name).output.shape
            if any(d is None for d in shape[1:]):
                raise ValueError(
                    f"exits: layer {name!r} has output shape {shape} with unknown sizes; give the "
                    "model a fixed input size"
                )
            if shape.rank in _POOLS:
                size = [max(1, int(d) // head_grid) for d in shape[1:-1]]
                pool = _POOLS[shape.rank](size, name=f"exit{index}_pool")
            else:
                pool = keras.layers.Activation("linear", name=f"exit{index}_pool")
            self.exit_pools.append(pool)
            self.exit_flattens.append(keras.layers.Flatten(name=f"exit{index}_flatten"))
            self.exit_heads.append(keras.layers.Dense(num_classes, name=f"exit{index}_logits"))
        self._graph = keras.Model(model.inputs, self._exit_outputs(), name=f"{self.name}_graph")
        self._track(scored=[f"exit{i}" for i in range(self.num_exits)])
        self.built = True

    @property
    def num_exits(self):
        """The number of exits, ``len(exits) + 1`` (the model's own output is the last)."""
        return len(self.exits) + 1

    def _exit_outputs(self):
        """The symbolic logits of every exit, built once on the backbone's graph."""
        outputs = []
        for index, name in enumerate(self.exits):
            feature = self.backbone.get_layer(name).output
            pooled = self.exit_flattens[index](self.exit_pools[index](feature))
            outputs.append(self.exit_heads[index](pooled))
        return [*outputs, self.backbone.outputs[0]]

    def call(self, inputs, training=None):
        return tf.stack(self._graph(inputs, training=training), axis=1)

    def _step_terms(self, x, y, sample_weight, targets, training):
        if y is None:
            raise ValueError("EarlyExit.fit needs labels y; pass (x, y)")
        logits = self(x, training=training)
        # Unlabeled rows (-1) learn from the last exit's top-1, as in the Distiller's label terms.
        labels = _labels.sparse_labels(y, logits[:, -1])
        scored = {f"exit{i}": logits[:, i] for i in range(self.num_exits)}
        return StepOutputs([(None, 1.0, self.exit_loss(None, logits, labels=labels))], None, scored)

    def exit_logits(self, x, batch_size=256):
        """Every exit's logits on ``x`` as numpy, shape ``(N, num_exits, classes)``."""
        return np.asarray(self.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)

    def predict_dynamic(self, x, threshold, batch_size=256):
        """Sends each input out at the first exit whose top softmax probability is >= ``threshold``.

        The Keras model computes every exit (a simulation of early exiting); on a device the
        ``truncated`` models stop at the chosen depth. An input that no exit is confident about
        leaves at the last exit: ``threshold=0`` sends all out at exit 0, any ``threshold > 1``
        sends all to the last exit.

        Args:
            x: Inputs ``(N, *input_shape)``.
            threshold: Confidence in [0, inf) an exit needs to let an input leave.
            batch_size: Batch size of the forward pass.

        Returns:
            ``(exit_index, logits)``: int array ``(N,)`` of the exit each input left at, and the
            logits ``(N, classes)`` of that exit.

        Raises:
            ValueError: If ``threshold`` is not a number >= 0.
        """
        logits = self.exit_logits(x, batch_size)
        exit_index = first_confident(logits, threshold)
        return exit_index, logits[np.arange(len(logits)), exit_index]

    def truncated(self, exit_index):
        """A plain Keras model (a copy, own weights) ending at exit ``exit_index``'s logits.

        Args:
            exit_index: Integer in ``[0, num_exits)``; ``num_exits - 1`` is the whole backbone.

        Returns:
            A ``keras.Model`` with one input and one output ``(batch, classes)``, holding only the
            layers that exit needs.

        Raises:
            ValueError: If ``exit_index`` is out of range.
        """
        index = self._check_index(exit_index)
        return _copy(
            keras.Model(self.backbone.inputs, self._graph.outputs[index], name=f"exit{index}_model")
        )

    def exits_model(self):
        """A plain Keras copy with all exits stacked in one output ``(batch, exits, classes)``.

        One output tensor rather than one per exit, so that the TFLite file's output order cannot
        differ from the exits' order; ``keras_kd.export.to_tflite`` converts it.
        """
        outputs = self._graph.outputs
        classes = int(outputs[-1].shape[-1])
        rows = [
            keras.layers.Reshape((1, classes), name=f"exit{i}_row")(o)
            for i, o in enumerate(outputs)
        ]
        stacked = keras.layers.Concatenate(axis=1, name="exits")(rows)
        return _copy(keras.Model(self.backbone.inputs, stacked, name=f"{self.name}_exits"))

    def exit_macs(self):
        """MACs of one example through each exit's own path: the backbone up to it plus its head.

        Returns:
            A list of ``num_exits`` ints (``keras_kd.students.count_macs`` of each ``truncated``
            model); the last is the backbone's.
        """
        return [
            count_macs(keras.Model(self.backbone.inputs, self._graph.outputs[i]))
            for i in range(self.num_exits)
        ]

    def dynamic_macs(self):
        """MACs spent on an input that leaves at each exit when exits are tried in order.

        Leaving at exit ``k`` costs the backbone up to exit ``k`` and the heads of exits ``0..k``
        (the earlier heads ran and were not confident enough).

        Returns:
            A non-decreasing list of ``num_exits`` ints.
        """
        path = self.exit_macs()
        heads = [
            path[i] - count_macs(keras.Model(self.backbone.inputs, self._feature(i)))
            for i in range(len(self.exits))
        ]
        return [path[k] + sum(heads[:k]) for k in range(self.num_exits)]

    def average_macs(self, x, threshold, batch_size=256):
        """Mean MACs per input of ``x`` at ``threshold`` (``predict_dynamic``, ``dynamic_macs``)."""
        exit_index, _ = self.predict_dynamic(x, threshold, batch_size)
        return float(np.mean(np.asarray(self.dynamic_macs())[exit_index]))

    def _feature(self, index):
        return self.backbone.get_layer(self.exits[index]).output

    def _check_index(self, exit_index):
        if (
            isinstance(exit_index, bool)
            or not isinstance(exit_index, (int, np.integer))
            or not 0 <= exit_index < self.num_exits
        ):
            raise ValueError(
                f"exit_index must be an integer in [0, {self.num_exits}), "
                f"received: exit_index={exit_index!r}"
            )
        return int(exit_index)

    def get_config(self):
        return {
            "name": self.name,
            "model": keras.saving.serialize_keras_object(self.backbone),
            "exits": list(self.exits),
            "head_grid": self.head_grid,
            "temperature": self.temperature,
            "distillation_weight": self.distillation_weight,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(
            config["model"], custom_objects=custom_objects
        )
        return cls(**config)


def _check_backbone(model):
    if not is_graph_model(model):
        raise ValueError(
            f"model must be a built Functional or Sequential keras.Model, received: model={model!r}"
        )
    if len(model.inputs) != 1 or len(model.outputs) != 1 or model.outputs[0].shape.rank != 2:
        raise ValueError(
            "model must have one input and one output of logits (batch, classes), received: "
            f"model {model.name!r} with outputs {[tuple(o.shape) for o in model.outputs]}"
        )


def _check_exits(model, exits):
    if isinstance(exits, str) or not isinstance(exits, (list, tuple)) or not exits:
        raise ValueError(
            f"exits must be a non-empty list of layer names, received: exits={exits!r}"
        )
    names = [layer.name for layer in model.layers]
    output_layer = model.outputs[0].node.layer.name
    for name in exits:
        if name not in names:
            raise ValueError(
                f"exits names a layer that model {model.name!r} does not have, received: "
                f"exits={list(exits)!r}; unknown {name!r}; its layers are {names}"
            )
        if name == output_layer:
            raise ValueError(
                f"exits must not name the output layer {name!r} (it is always the last exit), "
                f"received: exits={list(exits)!r}"
            )
    positions = [names.index(name) for name in exits]
    if len(set(positions)) != len(positions) or positions != sorted(positions):
        raise ValueError(
            "exits must be distinct layer names in the order the model computes them, "
            f"received: exits={list(exits)!r}"
        )
    return list(exits)


def _copy(model):
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone
