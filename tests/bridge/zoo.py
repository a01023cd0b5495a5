"""Models built the same way in Keras 3 and tf_keras, for the bridge tests.

Every builder takes the Keras module (``keras`` 3 or tf_keras) and returns a built model, so a test
can compare a converted model with one built natively, and the per-layer cases cover
``keras_kd.bridge.SUPPORTED_LAYERS`` one by one.
"""

import numpy as np


def mlp(k):
    L = k.layers
    return k.Sequential(
        [
            k.Input((20,), name="features"),
            L.Dense(32, activation="relu", name="hidden1"),
            L.Dropout(0.2),
            L.Dense(16, activation="gelu", name="hidden2"),
            L.Dense(10, name="logits"),
        ],
        name="mlp",
    )


def residual(k):
    """A small residual network: Conv -> BN -> ReLU, and a block added to its input."""
    L = k.layers
    x = k.Input((12, 12, 3), name="image")
    h = L.Conv2D(8, 3, padding="same", name="stem")(x)
    h = L.BatchNormalization(name="stem_bn")(h)
    h = L.ReLU(name="stem_relu")(h)
    r = L.Conv2D(8, 3, padding="same", name="block_conv")(h)
    r = L.BatchNormalization(name="block_bn")(r)
    h = L.Add(name="block_add")([h, r])
    h = L.Activation("relu", name="block_out")(h)
    h = L.GlobalAveragePooling2D(name="pool")(h)
    return k.Model(x, L.Dense(5, name="logits")(h), name="residual")


def mobilenet_block(k):
    """A MobileNet-style block: depthwise 3x3, BN, ReLU6, pointwise 1x1, then a separable conv."""
    L = k.layers
    x = k.Input((16, 16, 3), name="image")
    h = L.Rescaling(1 / 127.5, offset=-1.0, name="scale")(x)
    h = L.ZeroPadding2D(1, name="pad")(h)
    h = L.Conv2D(8, 3, strides=2, use_bias=False, name="stem")(h)
    h = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(h)
    h = L.BatchNormalization(name="dw_bn")(h)
    h = L.ReLU(6.0, name="dw_relu")(h)
    h = L.Conv2D(16, 1, use_bias=False, name="pw")(h)
    h = L.BatchNormalization(name="pw_bn")(h)
    h = L.ReLU(6.0, name="pw_relu")(h)
    h = L.SeparableConv2D(16, 3, padding="same", activation="relu6", name="sep")(h)
    h = L.GlobalAveragePooling2D(name="pool")(h)
    return k.Model(x, L.Dense(4, name="logits")(h), name="mobilenet_block")


def conv1d(k):
    """A 1-D conv net (MNIST-1D style): two branches concatenated."""
    L = k.layers
    x = k.Input((40, 1), name="signal")
    h = L.Conv1D(8, 5, activation="relu", name="conv1")(x)
    h = L.MaxPooling1D(2, name="pool1")(h)
    a = L.Conv1D(8, 3, padding="same", name="branch_a")(h)
    b = L.Conv1D(8, 3, padding="same", dilation_rate=2, name="branch_b")(h)
    h = L.Concatenate(name="concat")([a, b])
    h = L.LayerNormalization(name="norm")(h)
    h = L.GlobalAveragePooling1D(name="gap")(h)
    return k.Model(x, L.Dense(10, name="logits")(h), name="conv1d")


ZOO = {"mlp": mlp, "residual": residual, "mobilenet_block": mobilenet_block, "conv1d": conv1d}


def _single(shape, make):
    def build(k):
        x = k.Input(shape, name="x")
        return k.Model(x, make(k.layers)(x), name="single")

    return build


def _merge(shape, make):
    def build(k):
        a, b = k.Input(shape, name="a"), k.Input(shape, name="b")
        return k.Model([a, b], make(k.layers)([a, b]), name="merge")

    return build


def _embedding(k):
    x = k.Input((6,), dtype="int32", name="tokens")
    h = k.layers.Embedding(20, 4, name="embed")(x)
    return k.Model(x, k.layers.Flatten()(h), name="embedding")


# One small model per supported layer: {layer class name: builder(k)}.
LAYERS = {
    "Activation": _single((6,), lambda L: L.Activation("tanh")),
    "Add": _merge((4,), lambda L: L.Add()),
    "AlphaDropout": _single((6,), lambda L: L.AlphaDropout(0.2)),
    "Average": _merge((4,), lambda L: L.Average()),
    "AveragePooling1D": _single((8, 2), lambda L: L.AveragePooling1D(2)),
    "AveragePooling2D": _single((6, 6, 2), lambda L: L.AveragePooling2D(2, padding="same")),
    "AveragePooling3D": _single((4, 4, 4, 2), lambda L: L.AveragePooling3D(2)),
    "BatchNormalization": _single((6, 3), lambda L: L.BatchNormalization(axis=1)),
    "Concatenate": _merge((4,), lambda L: L.Concatenate()),
    "Conv1D": _single((10, 3), lambda L: L.Conv1D(4, 3, strides=2, activation="elu")),
    "Conv1DTranspose": _single((5, 3), lambda L: L.Conv1DTranspose(2, 3, strides=2)),
    "Conv2D": _single((7, 7, 3), lambda L: L.Conv2D(4, 3, groups=1, padding="same")),
    "Conv2DTranspose": _single(
        (4, 4, 3), lambda L: L.Conv2DTranspose(2, 3, strides=2, padding="same")
    ),
    "Conv3D": _single((4, 4, 4, 2), lambda L: L.Conv3D(2, 2)),
    "Cropping1D": _single((8, 2), lambda L: L.Cropping1D((1, 2))),
    "Cropping2D": _single((6, 6, 2), lambda L: L.Cropping2D(((1, 0), (0, 2)))),
    "Dense": _single((5,), lambda L: L.Dense(3, activation="swish")),
    "DepthwiseConv1D": _single((8, 3), lambda L: L.DepthwiseConv1D(3, depth_multiplier=2)),
    "DepthwiseConv2D": _single((6, 6, 3), lambda L: L.DepthwiseConv2D(3, depth_multiplier=2)),
    "Dot": _merge((4,), lambda L: L.Dot(axes=1, normalize=True)),
    "Dropout": _single((6,), lambda L: L.Dropout(0.5)),
    "ELU": _single((6,), lambda L: L.ELU(alpha=0.5)),
    "Embedding": _embedding,
    "Flatten": _single((3, 4), lambda L: L.Flatten()),
    "GaussianDropout": _single((6,), lambda L: L.GaussianDropout(0.3)),
    "GaussianNoise": _single((6,), lambda L: L.GaussianNoise(0.3)),
    "GlobalAveragePooling1D": _single((8, 2), lambda L: L.GlobalAveragePooling1D()),
    "GlobalAveragePooling2D": _single((4, 4, 2), lambda L: L.GlobalAveragePooling2D(keepdims=True)),
    "GlobalMaxPooling1D": _single((8, 2), lambda L: L.GlobalMaxPooling1D()),
    "GlobalMaxPooling2D": _single((4, 4, 2), lambda L: L.GlobalMaxPooling2D()),
    "GroupNormalization": _single((4, 4, 6), lambda L: L.GroupNormalization(groups=3)),
    "Identity": _single((6,), lambda L: L.Identity()),
    "LayerNormalization": _single((4, 6), lambda L: L.LayerNormalization(axis=[1, 2])),
    "LeakyReLU": _single((6,), lambda L: L.LeakyReLU(0.2)),
    "MaxPooling1D": _single((8, 2), lambda L: L.MaxPooling1D(3, strides=1)),
    "MaxPooling2D": _single((6, 6, 2), lambda L: L.MaxPooling2D()),
    "MaxPooling3D": _single((4, 4, 4, 2), lambda L: L.MaxPooling3D()),
    "Maximum": _merge((4,), lambda L: L.Maximum()),
    "Minimum": _merge((4,), lambda L: L.Minimum()),
    "Multiply": _merge((4,), lambda L: L.Multiply()),
    "Permute": _single((3, 4), lambda L: L.Permute((2, 1))),
    "PReLU": _single((3, 4), lambda L: L.PReLU(shared_axes=[1])),
    "ReLU": _single((6,), lambda L: L.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2)),
    "RepeatVector": _single((4,), lambda L: L.RepeatVector(3)),
    "Rescaling": _single((6,), lambda L: L.Rescaling(2.0, offset=0.5)),
    "Reshape": _single((12,), lambda L: L.Reshape((3, -1))),
    "SeparableConv1D": _single((8, 3), lambda L: L.SeparableConv1D(4, 3, depth_multiplier=2)),
    "SeparableConv2D": _single((6, 6, 3), lambda L: L.SeparableConv2D(4, 3, padding="same")),
    "Softmax": _single((6,), lambda L: L.Softmax()),
    "SpatialDropout1D": _single((8, 2), lambda L: L.SpatialDropout1D(0.5)),
    "SpatialDropout2D": _single((4, 4, 2), lambda L: L.SpatialDropout2D(0.5)),
    "Subtract": _merge((4,), lambda L: L.Subtract()),
    "UpSampling1D": _single((4, 2), lambda L: L.UpSampling1D(2)),
    "UpSampling2D": _single((3, 3, 2), lambda L: L.UpSampling2D(2, interpolation="bilinear")),
    "ZeroPadding1D": _single((4, 2), lambda L: L.ZeroPadding1D(2)),
    "ZeroPadding2D": _single((3, 3, 2), lambda L: L.ZeroPadding2D(((1, 0), (2, 1)))),
    "ZeroPadding3D": _single((2, 2, 2, 1), lambda L: L.ZeroPadding3D(1)),
}


def randomize(model, seed=0):
    """Sets every weight to random values (variances positive), so no weight is left at its init."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        name = getattr(weight, "path", None) or weight.name
        values = rng.normal(size=tuple(weight.shape)).astype("float32") * 0.5
        if "variance" in name:
            values = np.abs(values) + 0.5
        if "embeddings" in name or "int" in str(weight.dtype):
            continue
        weight.assign(values)


def inputs_for(model, seed=1, batch=4):
    """Random inputs for every input of ``model`` (integer ids below 20 for int inputs)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in model.inputs:
        shape = (batch, *tuple(tensor.shape)[1:])
        if "int" in str(tensor.dtype):
            arrays.append(rng.integers(0, 20, size=shape).astype("int32"))
        else:
            arrays.append(rng.normal(size=shape).astype("float32"))
    return arrays if len(arrays) > 1 else arrays[0]
