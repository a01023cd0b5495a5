"""TensorBoard scalars without the tensorboard package: write_scalars and ScalarLogger."""

import glob

import numpy as np

import keras_kd as kd
from keras_kd import compress, keras
from keras_kd._compat import tf
from keras_kd.report import ScalarLogger, tensorboard_callback, tensorboard_installed, write_scalars


def _scalars(log_dir):
    found = {}
    for path in glob.glob(f"{log_dir}/events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                number = tf.make_ndarray(value.tensor)
                found.setdefault(value.tag, []).append((event.step, float(number)))
                assert value.metadata.plugin_data.plugin_name == "scalars"
    # Several event files (one writer per run or epoch) come back from glob in any order.
    return {tag: sorted(points) for tag, points in found.items()}


def test_write_scalars_writes_readable_scalar_events(tmp_path):
    tags = write_scalars(tmp_path, {"kd/accuracy": 0.75, "kd/bytes": 10_128, "name": "skip"}, 3)
    assert tags == ["kd/accuracy", "kd/bytes"]
    assert _scalars(tmp_path) == {"kd/accuracy": [(3, 0.75)], "kd/bytes": [(3, 10128.0)]}


def test_scalar_logger_logs_every_loss_term_and_pruning_sparsity(tmp_path, digits, teacher):
    (x, y), _ = digits
    student = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10, name="dense")]
    )
    pruned = compress.prune(student, 0.5, schedule="constant", frequency=1)
    distiller = kd.Distiller(pruned, teacher)
    distiller.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    distiller.fit(
        x[:128],
        y[:128],
        epochs=2,
        batch_size=64,
        verbose=0,
        callbacks=[ScalarLogger(str(tmp_path))],
    )
    scalars = _scalars(tmp_path)
    term = distiller.distillation_losses[0].name  # the default loss's term, whichever it is
    for tag in ("epoch_loss", "epoch_hard_loss", f"epoch_{term}"):
        assert [step for step, _ in scalars[tag]] == [0, 1]
    assert np.isclose(scalars["sparsity/dense"][-1][1], 0.5, atol=0.01)


def test_tensorboard_callback_falls_back_without_the_package(tmp_path):
    callback = tensorboard_callback(tmp_path)
    expected = keras.callbacks.TensorBoard if tensorboard_installed() else ScalarLogger
    assert isinstance(callback, expected)
