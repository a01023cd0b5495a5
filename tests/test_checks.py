"""The generic argument checks of ``keras_kd._checks``: what each accepts, returns and refuses."""

import math

import numpy as np
import pytest

from keras_kd import _checks
from keras_kd._compat import keras


def _graph_model():
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs), name="graph")


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="subclassed")
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


@pytest.mark.parametrize(
    "check, value, expected",
    [
        (lambda v: _checks.check_positive("t", v), 2, 2.0),
        (lambda v: _checks.check_positive("t", v), np.float32(0.5), 0.5),
        (lambda v: _checks.check_number("w", v), 0, 0.0),
        (lambda v: _checks.check_number("p", v, minimum=1.0), 1, 1.0),
        (lambda v: _checks.check_positive_int("n", v), np.int64(3), 3),
        (lambda v: _checks.check_positive_int("n", v, minimum=0), 0, 0),
        (lambda v: _checks.check_positive_int("k", v, optional=True), None, None),
        (lambda v: _checks.check_fraction("f", v), 0, 0.0),
        (lambda v: _checks.check_fraction("f", v, "(0, 1]"), 1, 1.0),
        (lambda v: _checks.check_bool("b", v), False, False),
        (lambda v: _checks.check_choice("c", v, ("a", "b")), "b", "b"),
    ],
)
def test_checks_return_accepted_values_in_their_canonical_type(check, value, expected):
    result = check(value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    "check, message",
    [
        (lambda: _checks.check_positive("t", 0), r"t must be > 0, received: t=0$"),
        (lambda: _checks.check_positive("t", math.inf), r"t must be > 0 and finite, .*t=inf$"),
        (lambda: _checks.check_positive("t", "2"), r"t must be a number > 0, received: t='2'$"),
        (lambda: _checks.check_positive("a", 0, "why"), r"a must be > 0 \(why\), received: a=0$"),
        (lambda: _checks.check_positive("t", True), r"t must be a number > 0, received: t=True"),
        (lambda: _checks.check_number("w", -1), r"w must be a finite number >= 0, received: w=-1$"),
        (lambda: _checks.check_number("w", math.nan), r"w must be a finite number >= 0, .*w=nan"),
        (lambda: _checks.check_number("p", 0.5, 1.0), r"p must be a finite number >= 1, .*p=0.5"),
        (lambda: _checks.check_weights(a=0, b=0.0), r"a and b must not both be 0, .*a=0, b=0.0$"),
        (lambda: _checks.check_weights(a=-1, b=1), r"a must be a finite number >= 0, .*a=-1$"),
        (lambda: _checks.check_positive_int("n", 0), r"n must be an integer >= 1, received: n=0$"),
        (lambda: _checks.check_positive_int("n", 2.0), r"n must be an integer >= 1, .*n=2.0$"),
        (lambda: _checks.check_positive_int("n", True), r"n must be an integer >= 1, .*n=True$"),
        (lambda: _checks.check_positive_int("n", 1, 2), r"n must be an integer >= 2, .*n=1$"),
        (
            lambda: _checks.check_positive_int("k", 0, optional=True),
            r"k must be None or an integer >= 1, received: k=0$",
        ),
        (lambda: _checks.check_fraction("f", 1), r"f must be a number in \[0, 1\), .*f=1$"),
        (lambda: _checks.check_fraction("f", 0, "(0, 1)"), r"f must be a number in \(0, 1\), "),
        (lambda: _checks.check_fraction("f", 1.5, "[0, 1]"), r"f must be a number in \[0, 1\], "),
        (lambda: _checks.check_fraction("f", "0.5"), r"f must be a number in \[0, 1\), .*f='0.5'"),
        (lambda: _checks.check_bool("b", 1), r"b must be True or False, received: b=1$"),
        (lambda: _checks.check_choice("c", "x", ("a", "b")), r"c must be one of \['a', 'b'\], "),
        (lambda: _checks.check_choice("c", [], {"a": 1}), r"c must be one of \['a'\], .*c=\[\]$"),
    ],
)
def test_checks_refuse_with_the_argument_and_value_named(check, message):
    with pytest.raises(ValueError, match=message):
        check()


def test_is_graph_model_tells_functional_and_sequential_from_subclassed_and_non_models():
    sequential = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert _checks.is_graph_model(_graph_model()) and _checks.is_graph_model(sequential)
    assert not _checks.is_graph_model(_Subclassed())
    assert not _checks.is_graph_model(keras.Sequential([keras.layers.Dense(2)]))  # no input shape
    assert not _checks.is_graph_model("graph") and not _checks.is_graph_model(None)


def test_check_model_names_the_argument_or_the_caller():
    model = _graph_model()
    assert _checks.check_model("student", model) is model
    with pytest.raises(ValueError, match=r"student is required, received: student=None"):
        _checks.check_model("student", None)
    with pytest.raises(TypeError, match=r"student must be a keras.Model .*received: student=3"):
        _checks.check_model("student", 3)
    with pytest.raises(TypeError, match=r"prune needs a keras.Model .*received: model='net'"):
        _checks.check_model("model", "net", caller="prune")
    unbuilt = keras.Sequential([keras.layers.Dense(2)], name="no_input")
    with pytest.raises(ValueError, match=r"must be a built model .*model='no_input' with no input"):
        _checks.check_model("model", unbuilt, graph=True)


def test_check_model_with_graph_refuses_a_subclassed_model_even_when_built():
    model = _Subclassed()
    model(np.zeros((1, 3), np.float32))
    assert _checks.check_model("teacher", model) is model  # without graph= it is accepted
    with pytest.raises(ValueError, match=r"strip needs a Sequential or functional model .*"):
        _checks.check_model("model", model, graph=True, caller="strip")
