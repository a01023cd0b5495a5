"""Tests of keras_kd.compress.quantize: QAT inside Distiller.fit, collaborative schemes, errors."""

import numpy as np
import pytest
import tensorflow_model_optimization as tfmot  # noqa: E402

from keras_kd import compress, keras


def _wrapped_names(model):
    return sorted(
        layer.layer.name
        for layer in model.layers
        if isinstance(layer, tfmot.quantization.keras.QuantizeWrapper)
    )


def test_qat_student_trains_in_a_distiller_and_learns_ranges(student, distill):
    qat = compress.quantize(student)
    assert _wrapped_names(qat) == ["s_block1", "s_block2", "s_global_pool", "s_logits", "s_pool1"]
    before = [w.numpy().copy() for w in qat.weights if "kernel" in w.name]
    history = distill(qat).history.history
    assert np.isfinite(history["loss"]).all()
    assert any(
        not np.array_equal(a, w.numpy())
        for a, w in zip(before, [w for w in qat.weights if "kernel" in w.name])
    )
    ranges = [w.numpy() for w in qat.weights if w.name.endswith("post_activation_max:0")]
    assert ranges and all(np.all(r > 0) for r in ranges)  # activation ranges were learned


def _kernel(layer):
    """The kernel variable of a plain or QAT-wrapped layer (a QAT wrapper's .kernel is a tensor)."""
    return next(w for w in layer.weights if w.name.endswith("/kernel:0")).numpy()


def test_pruning_preserving_qat_keeps_the_zeros(student, distill):
    sparse = compress.strip(student)
    for name in ("s_block1", "s_block2", "s_logits"):
        kernel = sparse.get_layer(name).kernel
        values = kernel.numpy()
        values[np.abs(values) <= np.quantile(np.abs(values), 0.6)] = 0.0
        kernel.assign(values)
    pqat = compress.quantize(sparse, preserve="sparsity")
    distill(pqat)
    for name in ("s_block1", "s_block2", "s_logits"):
        assert np.mean(_kernel(pqat.get_layer(f"quant_{name}")) == 0) == pytest.approx(
            0.6, abs=0.02
        )


def test_cluster_preserving_qat_keeps_the_clusters(student, distill):
    clustered = compress.strip(compress.cluster(student, 4))
    cqat = compress.quantize(clustered, preserve="clusters")
    distill(cqat)
    stripped = compress.strip(cqat)
    dense = _kernel(stripped.get_layer("quant_s_logits"))
    assert np.unique(dense).size <= 4
    conv = _kernel(
        stripped.get_layer("quant_s_block2")
    )  # Conv2D: tfmot keeps clusters per output channel
    assert max(np.unique(conv[..., channel]).size for channel in range(conv.shape[-1])) <= 4


def _with_lambda():
    inputs = keras.Input((6,))
    x = keras.layers.Dense(4, name="hidden")(inputs)
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="out")(x))


def test_quantize_names_the_layer_it_cannot_wrap_and_skip_layers_gets_around_it():
    with pytest.raises(
        ValueError, match=r"'double' \(Lambda\).*skip_layers=\['double'\].*quantize_annotate_layer"
    ):
        compress.quantize(_with_lambda())
    qat = compress.quantize(_with_lambda(), skip_layers=["double"])
    assert _wrapped_names(qat) == ["hidden", "out"]
    assert isinstance(qat.get_layer("double"), keras.layers.Lambda)
    assert qat(np.ones((2, 6), np.float32)).shape == (2, 3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"preserve": "weights"}, "preserve must be one of"),
        ({"skip_layers": ["nope"]}, r"skip_layers names unknown layers \['nope'\]"),
    ],
)
def test_quantize_rejects_bad_arguments(student, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compress.quantize(student, **kwargs)


def test_quantize_rejects_an_already_quantized_model(student):
    with pytest.raises(ValueError, match="already quantized"):
        compress.quantize(compress.quantize(student))
