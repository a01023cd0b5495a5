"""Export fixtures: one accurate digits student, converted once per session for every target."""

import pytest

from keras_kd._compat import keras


@pytest.fixture(scope="session")
def export_student(digits):
    """The example student (width 16) trained on digits to about 97 % test accuracy."""
    from examples.models import make_student

    (x, y), _ = digits
    keras.utils.set_random_seed(0)
    model = make_student(x.shape[1:], 10, width=16)
    model.compile(
        keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="session")
def exported(export_student, digits, tmp_path_factory):
    """``{target: path}``: ``export_student`` converted once for every target."""
    from keras_kd import export

    (x, _), _ = digits
    folder = tmp_path_factory.mktemp("exported")
    return {
        target: export.to_tflite(
            export_student, str(folder / f"{target}.tflite"), target=target, representative_data=x
        )
        for target in export.TARGETS
    }
