"""keras_kd.losses.get: the names that example scripts use."""

import pytest

import keras_kd as kd
from keras_kd import keras

_PAIRS = [("t_block2", "s_block2")]
_ARGS = {
    "fitnet": {"pairs": _PAIRS},
    "at": {"pairs": _PAIRS},
    "nst": {"pairs": _PAIRS},
    "fsp": {"flows": [(("t_pool1", "t_block2"), ("s_pool1", "s_block2"))]},
}


def test_every_method_of_the_issue_has_a_name():
    expected = {
        "kd",
        "dkd",
        "multi_kd",
        "dist",
        "fitnet",
        "at",
        "fsp",
        "nst",
        "rkd",
        "sp",
        "pkt",
        "cc",
    }
    assert set(kd.losses.names()) == expected


@pytest.mark.parametrize(
    "name",
    ["kd", "dkd", "multi_kd", "dist", "fitnet", "at", "fsp", "nst", "rkd", "sp", "pkt", "cc"],
)
def test_get_makes_a_serializable_loss_layer(name):
    loss = kd.losses.get(name, **_ARGS.get(name, {}))
    assert isinstance(loss, keras.layers.Layer)
    restored = keras.layers.deserialize(keras.layers.serialize(loss))
    assert type(restored) is type(loss) and restored.get_config() == loss.get_config()


def test_get_rejects_unknown_names_listing_the_known_ones():
    with pytest.raises(
        ValueError, match=r"name must be one of \['at', 'cc'.*received: name='nope'"
    ):
        kd.losses.get("nope")
