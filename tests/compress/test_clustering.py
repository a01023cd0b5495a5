"""Tests of keras_kd.compress.cluster: at most `clusters` values per kernel after distilling."""

import numpy as np
import pytest

from keras_kd import compress, keras


@pytest.mark.parametrize("init", ["kmeans_plus_plus", "linear"])
def test_clustered_student_has_at_most_clusters_values_per_kernel_after_distillation(
    student, distill, init
):
    clustered = compress.cluster(student, 6, init=init)
    distill(clustered)
    stripped = compress.strip(clustered)
    counts = compress.distinct_values(stripped)
    assert set(counts) == {"s_block1", "s_block2", "s_logits"}
    assert all(2 <= count <= 6 for count in counts.values())
    assert (
        np.unique(student.get_layer("s_block2").kernel.numpy()).size > 6
    )  # the original is untouched


def test_cluster_only_the_named_layers():
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(8, name="a"), keras.layers.Dense(3, name="b")]
    )
    counts = compress.distinct_values(compress.strip(compress.cluster(model, 3, layers=["b"])))
    assert counts["b"] <= 3 and counts["a"] == 40


def test_cluster_preserve_sparsity_keeps_zeros(student, distill):
    pruned = compress.strip(compress.prune(student, 0.5, schedule="constant", frequency=2))
    kernel = pruned.get_layer("s_block2").kernel
    values = kernel.numpy()
    values[np.abs(values) < np.median(np.abs(values))] = 0.0
    kernel.assign(values)
    clustered = compress.cluster(pruned, 4, preserve_sparsity=True)
    distill(clustered)
    assert compress.sparsity(compress.strip(clustered))["s_block2"] >= 0.49


@keras.utils.register_keras_serializable(package="keras_kd_tests")
class Scale(keras.layers.Layer):
    """A custom layer with a weight, which tfmot cannot cluster."""

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],), initializer="ones")

    def call(self, inputs):
        return inputs * self.scale


def test_cluster_names_a_layer_it_cannot_wrap():
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(8, name="a"), Scale(name="scale")]
    )
    with pytest.raises(ValueError, match=r"'scale' \(Scale\).*layers=\['a'\].*ClusterableLayer"):
        compress.cluster(model, 4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"clusters": 1}, "clusters must be an integer >= 2"),
        ({"clusters": 4, "init": "kmeans"}, "init must be one of"),
        ({"clusters": 4, "preserve_sparsity": "yes"}, "preserve_sparsity must be True or False"),
    ],
)
def test_cluster_rejects_bad_arguments(student, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compress.cluster(student, **kwargs)
