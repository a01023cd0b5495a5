"""Every public entry point refuses bad input before any training, naming the argument and value.

``CASES`` is the single source of the "Bad input" table in README.md: each case is one table row
and one test. ``table_markdown()`` renders the table (``python -m tests.test_bad_input`` prints it),
and ``test_readme_lists_every_case`` fails until README.md holds every row.
"""

import functools
import os
import re
from typing import Any, Callable, NamedTuple

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import compress, data, export, losses, schemes
from keras_kd._compat import keras, tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE = (8, 8, 1)


class Case(NamedTuple):
    entry: str  # the public entry point
    arg: str  # the argument named in the message
    refused: str  # what is refused, in words
    call: Callable[[], Any]
    error: type
    value: str  # the received value as the message prints it
    allowed: str  # a fragment of the message saying what is allowed

    @property
    def id(self):
        return re.sub(r"[^a-z0-9]+", "-", f"{self.entry} {self.arg} {self.refused}".lower()).strip(
            "-"
        )


def _net(prefix, classes=10, softmax=False):
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(2, 3, padding="same", name=f"{prefix}_conv")(inputs)
    x = keras.layers.Flatten(name=f"{prefix}_flat")(x)
    outputs = keras.layers.Dense(
        classes, activation="softmax" if softmax else None, name=f"{prefix}_logits"
    )(x)
    return keras.Model(inputs, outputs, name=prefix)


@functools.lru_cache(maxsize=None)
def _m(kind):
    """Small models shared by the cases, built on first use."""
    if kind == "teacher":
        return _net("teacher")
    if kind == "student":
        return _net("student")
    if kind == "student5":
        return _net("student5", classes=5)
    if kind == "softmax":
        return _net("soft", softmax=True)
    if kind == "unbuilt_sequential":
        return keras.Sequential([keras.layers.Dense(10)], name="no_input")

    class Sub(keras.Model):
        def __init__(self):
            super().__init__(name="subclassed")
            self.dense = keras.layers.Dense(10)

        def call(self, x):
            return self.dense(x)

    return Sub()


def _distiller(**kwargs):
    args = {"student": _m("student"), "teacher": _m("teacher"), **kwargs}
    return kd.Distiller(**args)


def _compiled(loss=None, **kwargs):
    distiller = _distiller(**kwargs)
    distiller.compile(
        "adam", loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return distiller


X = np.zeros((4, *SHAPE), np.float32)
Y = np.array([0, 1, 2, 3])


def _fit(x=X, y=Y, loss=None, **kwargs):
    return _compiled(loss, **kwargs).fit(x, y, epochs=1, verbose=0)


def _tflite(tmp):
    return os.path.join(tmp, "m.tflite")


def _missing():
    return os.path.join(ROOT, "no_such_dir", "m.tflite")


def _train():
    return (X, Y)


def _make():
    return _net("made")


SCC = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
CC = keras.losses.CategoricalCrossentropy(from_logits=True)
E = ValueError
T = TypeError

CASES = [
    # Distiller
    Case(
        "Distiller",
        "student",
        "not a Keras model",
        lambda: _distiller(student="net"),
        T,
        "'net'",
        "keras.Model",
    ),
    Case("Distiller", "student", "None", lambda: _distiller(student=None), E, "None", "required"),
    Case(
        "Distiller",
        "student",
        "Sequential without an input shape",
        lambda: _distiller(student=_m("unbuilt_sequential")),
        E,
        "no_input",
        "built",
    ),
    Case(
        "Distiller",
        "teacher",
        "subclassed model never called",
        lambda: _distiller(teacher=_m("subclassed")),
        E,
        "subclassed",
        "built",
    ),
    Case(
        "Distiller",
        "teacher",
        "not a Keras model",
        lambda: _distiller(teacher=42),
        T,
        "42",
        "keras.Model",
    ),
    Case(
        "Distiller",
        "teacher",
        "the same object as student",
        lambda: _distiller(teacher=_m("student")),
        E,
        "student",
        "different",
    ),
    Case(
        "Distiller", "teacher", "empty list", lambda: _distiller(teacher=[]), E, "[]", "non-empty"
    ),
    Case(
        "Distiller",
        "teacher",
        "the same model twice",
        lambda: _distiller(teacher=[_m("teacher"), _m("teacher")]),
        E,
        "teacher",
        "once",
    ),
    Case(
        "Distiller",
        "teacher",
        "class count differs from student",
        lambda: _distiller(student=_m("student5")),
        E,
        "teacher",
        "same classes",
    ),
    Case(
        "Distiller",
        "teacher",
        "ends in softmax",
        lambda: _distiller(teacher=_m("softmax")),
        E,
        "soft",
        "logits",
    ),
    Case("Distiller", "alpha", "outside [0, 1]", lambda: _distiller(alpha=1.5), E, "1.5", "[0, 1]"),
    Case(
        "Distiller", "alpha", "not a number", lambda: _distiller(alpha="0.1"), E, "'0.1'", "[0, 1]"
    ),
    Case(
        "Distiller", "losses", "empty list", lambda: _distiller(losses=[]), E, "[]", "at least one"
    ),
    Case(
        "Distiller",
        "losses",
        "entry not a loss layer",
        lambda: _distiller(losses=["kd"]),
        T,
        "'kd'",
        "Keras layer",
    ),
    Case(
        "Distiller",
        "losses",
        "two losses with one name",
        lambda: _distiller(losses=[losses.LogitsKD(), losses.LogitsKD()]),
        E,
        "logits_kd",
        "distinct names",
    ),
    Case(
        "Distiller",
        "losses",
        "single-teacher loss with several teachers",
        lambda: _distiller(teacher=[_m("teacher"), _net("t2")], losses=[losses.LogitsKD()]),
        E,
        "logits_kd",
        "multi_teacher",
    ),
    Case(
        "Distiller",
        "pairs",
        "naming an unknown layer",
        lambda: _distiller(losses=[losses.AttentionTransfer([("t_nope", "student_conv")])]),
        E,
        "t_nope",
        "must name layers",
    ),
    Case(
        "Distiller",
        "loss_weights",
        "wrong count",
        lambda: _distiller(loss_weights=[1.0, 2.0]),
        E,
        "[1.0, 2.0]",
        "one weight per",
    ),
    Case(
        "Distiller",
        "loss_weights",
        "negative",
        lambda: _distiller(loss_weights=[-1.0]),
        E,
        "[-1.0]",
        ">= 0",
    ),
    Case(
        "Distiller",
        "cache_teacher",
        "unknown mode",
        lambda: _distiller(cache_teacher="sometimes"),
        E,
        "'sometimes'",
        '"auto", True or False',
    ),
    Case(
        "Distiller",
        "cache_dtype",
        "unknown dtype",
        lambda: _distiller(cache_dtype="int8"),
        E,
        "'int8'",
        "float16",
    ),
    Case(
        "Distiller",
        "cache_top_k",
        "not in [1, classes]",
        lambda: _distiller(cache_top_k=0),
        E,
        "0",
        "integer",
    ),
    Case(
        "Distiller",
        "augment",
        "not a Keras layer",
        lambda: _distiller(augment="mixup"),
        T,
        "'mixup'",
        "Keras layer",
    ),
    Case(
        "Distiller",
        "augment",
        "mixing layer with alpha > 0",
        lambda: _distiller(augment=data.MixUp()),
        E,
        "alpha=0.1",
        "alpha=0",
    ),
    # Distiller.compile / fit
    Case(
        "Distiller.compile",
        "loss",
        "missing while alpha > 0",
        lambda: _distiller().compile("adam"),
        E,
        "None",
        "hard-label loss",
    ),
    Case(
        "Distiller.compile",
        "loss",
        "expects probabilities",
        lambda: _distiller().compile("adam", loss=keras.losses.SparseCategoricalCrossentropy()),
        E,
        "SparseCategoricalCrossentropy",
        "from_logits=True",
    ),
    Case(
        "Distiller.compile",
        "loss",
        "unknown name",
        lambda: _distiller().compile("adam", loss="no_such_loss"),
        E,
        "'no_such_loss'",
        "Keras loss",
    ),
    Case(
        "Distiller.compile",
        "optimizer",
        "unknown name",
        lambda: _distiller().compile("no_such_opt", loss=SCC),
        E,
        "'no_such_opt'",
        "optimizer",
    ),
    Case("Distiller.fit", "y", "None with alpha > 0", lambda: _fit(y=None), E, "None", "labels"),
    Case(
        "Distiller.fit",
        "y",
        "every example unlabeled",
        lambda: _fit(y=np.full(4, -1)),
        E,
        "-1",
        "label",
    ),
    Case(
        "Distiller.fit",
        "y",
        "class id >= the student's classes",
        lambda: _fit(y=np.array([0, 1, 2, 10])),
        E,
        "10",
        "[0, 10)",
    ),
    Case(
        "Distiller.fit",
        "y",
        "one-hot labels with a sparse loss",
        lambda: _fit(y=np.eye(10)[:4]),
        E,
        "(4, 10)",
        "class ids",
    ),
    Case(
        "Distiller.fit",
        "y",
        "class ids with a categorical loss",
        lambda: _fit(loss=CC),
        E,
        "(4,)",
        "one-hot",
    ),
    Case(
        "Distiller.fit",
        "y",
        "one-hot width differs from classes",
        lambda: _fit(y=np.eye(12)[:4], loss=CC),
        E,
        "(4, 12)",
        "10",
    ),
    Case(
        "Distiller.fit",
        "y",
        "length differs from x",
        lambda: _fit(y=Y[:3]),
        E,
        "(3,)",
        "one label per",
    ),
    Case(
        "Distiller.fit",
        "x",
        "empty arrays",
        lambda: _fit(x=X[:0], y=Y[:0]),
        E,
        "(0, 8, 8, 1)",
        "at least one",
    ),
    Case(
        "Distiller.fit",
        "x",
        "empty dataset",
        lambda: _fit(x=tf.data.Dataset.from_tensor_slices((X, Y)).take(0).batch(2), y=None),
        E,
        "empty",
        "at least one",
    ),
    Case(
        "Distiller.fit",
        "x",
        "example shape differs from the student's input",
        lambda: _fit(x=np.zeros((4, 9, 9, 1), np.float32)),
        E,
        "(4, 9, 9, 1)",
        "(None, 8, 8, 1)",
    ),
    Case(
        "Distiller.fit",
        "x",
        "dataset of a wrong example shape",
        lambda: _fit(
            x=tf.data.Dataset.from_tensor_slices((np.zeros((4, 3), np.float32), Y)).batch(2), y=None
        ),
        E,
        "(None, 3)",
        "(None, 8, 8, 1)",
    ),
    # Losses
    Case("losses.get", "name", "unknown loss name", lambda: losses.get("kdd"), E, "'kdd'", "'kd'"),
    Case("losses.get", "name", "not a string", lambda: losses.get(3), E, "3", "'kd'"),
    Case("LogitsKD", "temperature", "<= 0", lambda: losses.LogitsKD(0), E, "0", "> 0"),
    Case(
        "LogitsKD", "temperature", "not a number", lambda: losses.LogitsKD("hot"), E, "'hot'", "> 0"
    ),
    Case(
        "LogitsKD",
        "temperature",
        "infinite",
        lambda: losses.LogitsKD(float("inf")),
        E,
        "inf",
        "> 0",
    ),
    Case(
        "LogitsKD",
        "teacher",
        "class count differs from student (call)",
        lambda: losses.LogitsKD()(tf.zeros((2, 10)), tf.zeros((2, 5))),
        E,
        "(2, 10)",
        "same number of classes",
    ),
    Case("DKD", "alpha", "negative", lambda: losses.DKD(alpha=-1.0), E, "-1.0", ">= 0"),
    Case("DKD", "beta", "not a number", lambda: losses.DKD(beta="8"), E, "'8'", ">= 0"),
    Case("DKD", "temperature", "<= 0", lambda: losses.DKD(temperature=-2), E, "-2", "> 0"),
    Case(
        "DKD",
        "labels",
        "missing (call)",
        lambda: losses.DKD()(tf.zeros((2, 10)), tf.zeros((2, 10))),
        E,
        "None",
        "labels",
    ),
    Case(
        "MultiTeacherKD",
        "teacher_weights",
        "negative weight",
        lambda: losses.MultiTeacherKD(teacher_weights=[1.0, -1.0]),
        E,
        "[1.0, -1.0]",
        ">= 0",
    ),
    Case(
        "MultiTeacherKD",
        "temperature",
        "<= 0",
        lambda: losses.MultiTeacherKD(temperature=0.0),
        E,
        "0.0",
        "> 0",
    ),
    Case(
        "FitNetHint", "pairs", "empty list", lambda: losses.FitNetHint([]), E, "[]", "at least one"
    ),
    Case(
        "FitNetHint",
        "pairs",
        "a bare string",
        lambda: losses.FitNetHint("t_conv"),
        E,
        "'t_conv'",
        "tuples",
    ),
    Case(
        "FitNetHint",
        "adapter",
        "unknown value",
        lambda: losses.FitNetHint([("a", "b")], adapter="big"),
        E,
        "'big'",
        "auto",
    ),
    Case(
        "AttentionTransfer",
        "p",
        "< 1",
        lambda: losses.AttentionTransfer([("a", "b")], p=0),
        E,
        "0",
        ">= 1",
    ),
    Case(
        "AttentionTransfer",
        "pairs",
        "entry not a name pair",
        lambda: losses.AttentionTransfer([("a", 1)]),
        E,
        "('a', 1)",
        "tuple of strings",
    ),
    Case(
        "FSP", "flows", "not pairs of layer pairs", lambda: losses.FSP(["a"]), E, "['a']", "flows"
    ),
    Case(
        "NST",
        "kernel",
        "unknown kernel",
        lambda: losses.NST([("a", "b")], kernel="rbf"),
        E,
        "'rbf'",
        "polynomial",
    ),
    Case("NST", "degree", "< 1", lambda: losses.NST([("a", "b")], degree=0), E, "0", ">= 1"),
    Case(
        "NST",
        "constant",
        "negative",
        lambda: losses.NST([("a", "b")], constant=-1.0),
        E,
        "-1.0",
        ">= 0",
    ),
    Case(
        "RKD",
        "distance_weight",
        "negative",
        lambda: losses.RKD(distance_weight=-1.0),
        E,
        "-1.0",
        ">= 0",
    ),
    Case(
        "RKD",
        "angle_weight",
        "not a number",
        lambda: losses.RKD(angle_weight=None),
        E,
        "None",
        ">= 0",
    ),
    Case(
        "SimilarityPreserving",
        "pairs",
        "empty list",
        lambda: losses.SimilarityPreserving(pairs=[]),
        E,
        "[]",
        "at least one",
    ),
    Case("PKT", "eps", "<= 0", lambda: losses.PKT(eps=0.0), E, "0.0", "> 0"),
    Case(
        "CorrelationCongruence",
        "gamma",
        "<= 0",
        lambda: losses.CorrelationCongruence(gamma=0.0),
        E,
        "0.0",
        "> 0",
    ),
    Case(
        "CorrelationCongruence",
        "order",
        "< 1",
        lambda: losses.CorrelationCongruence(order=0),
        E,
        "0",
        ">= 1",
    ),
    # Data
    Case(
        "data.load", "name", "unknown dataset", lambda: data.load("mnist9"), E, "'mnist9'", "digits"
    ),
    Case("data.load", "name", "not a string", lambda: data.load(7), E, "7", "digits"),
    Case(
        "data.load",
        "name",
        "IDX directory without the files",
        lambda: data.load("idx:" + ROOT),
        FileNotFoundError,
        ROOT,
        "train-images-idx3-ubyte",
    ),
    Case(
        "data.load",
        "data_dir",
        "given for a non-tfds dataset",
        lambda: data.load("digits", data_dir="/tmp"),
        E,
        "'/tmp'",
        "tfds",
    ),
    Case(
        "data.load_mnist1d",
        "num_samples",
        "< 2",
        lambda: data.load_mnist1d(num_samples=1),
        E,
        "1",
        ">= 2",
    ),
    Case(
        "data.load_mnist1d",
        "train_split",
        "outside (0, 1)",
        lambda: data.load_mnist1d(train_split=1.0),
        E,
        "1.0",
        "(0, 1)",
    ),
    Case("data.MixUp", "alpha", "<= 0", lambda: data.MixUp(alpha=0), E, "0", "> 0"),
    Case("data.CutMix", "alpha", "not a number", lambda: data.CutMix(alpha="1"), E, "'1'", "> 0"),
    Case(
        "data.mix",
        "weights",
        "one weight per example missing",
        lambda: data.mix(tf.zeros((4, 2)), tf.zeros(3), tf.range(4)),
        E,
        "(3,)",
        "(4,)",
    ),
    Case(
        "data.with_unlabeled",
        "x_unlabeled",
        "example shape differs from x",
        lambda: data.with_unlabeled(X, Y, np.zeros((2, 3))),
        E,
        "(3,)",
        "(8, 8, 1)",
    ),
    Case(
        "data.with_unlabeled",
        "y",
        "length differs from x",
        lambda: data.with_unlabeled(X, Y[:2], X),
        E,
        "(2,)",
        "one integer label per",
    ),
    Case(
        "data.label_with_teacher",
        "teacher",
        "not a Keras model",
        lambda: data.label_with_teacher("t", X),
        T,
        "'t'",
        "keras.Model",
    ),
    Case(
        "data.label_with_teacher",
        "batch_size",
        "< 1",
        lambda: data.label_with_teacher(_m("teacher"), X, batch_size=0),
        E,
        "0",
        ">= 1",
    ),
    Case(
        "data.label_with_teacher",
        "dtype",
        "unknown dtype",
        lambda: data.label_with_teacher(_m("teacher"), X, dtype="int8"),
        E,
        "'int8'",
        "float16",
    ),
    Case(
        "data.label_with_teacher",
        "x",
        "empty",
        lambda: data.label_with_teacher(_m("teacher"), X[:0]),
        E,
        "(0, 8, 8, 1)",
        "at least one",
    ),
    # Compression
    Case(
        "compress.prune",
        "model",
        "not a Keras model",
        lambda: compress.prune("net", 0.5),
        T,
        "'net'",
        "keras.Model",
    ),
    Case(
        "compress.prune",
        "model",
        "subclassed model",
        lambda: compress.prune(_m("subclassed"), 0.5),
        E,
        "subclassed",
        "Sequential or functional",
    ),
    Case(
        "compress.prune",
        "model",
        "Sequential without an input shape",
        lambda: compress.prune(_m("unbuilt_sequential"), 0.5),
        E,
        "no_input",
        "built",
    ),
    Case(
        "compress.prune",
        "target_sparsity",
        "outside [0, 1)",
        lambda: compress.prune(_m("student"), 1.5),
        E,
        "1.5",
        "[0, 1)",
    ),
    Case(
        "compress.prune",
        "schedule",
        "unknown schedule",
        lambda: compress.prune(_m("student"), 0.5, schedule="cubic"),
        E,
        "'cubic'",
        "polynomial",
    ),
    Case(
        "compress.prune",
        "layers",
        "unknown layer name",
        lambda: compress.prune(_m("student"), 0.5, schedule="constant", layers=["nope"]),
        E,
        "nope",
        "layers of",
    ),
    Case(
        "compress.prune",
        "frequency",
        "< 1",
        lambda: compress.prune(_m("student"), 0.5, frequency=0),
        E,
        "0",
        ">= 1",
    ),
    Case(
        "compress.prune",
        "m_by_n",
        "not (m, n) with 0 < m < n",
        lambda: compress.prune(_m("student"), 0.5, m_by_n=(4, 2)),
        E,
        "(4, 2)",
        "m < n",
    ),
    Case(
        "compress.quantize",
        "preserve",
        "unknown value",
        lambda: compress.quantize(_m("student"), preserve="all"),
        E,
        "'all'",
        "sparsity",
    ),
    Case(
        "compress.quantize",
        "skip_layers",
        "unknown layer name",
        lambda: compress.quantize(_m("student"), skip_layers=["nope"]),
        E,
        "nope",
        "layers of",
    ),
    Case(
        "compress.cluster",
        "clusters",
        "< 2",
        lambda: compress.cluster(_m("student"), 1),
        E,
        "1",
        ">= 2",
    ),
    Case(
        "compress.cluster",
        "init",
        "unknown init",
        lambda: compress.cluster(_m("student"), 8, init="bogus"),
        E,
        "'bogus'",
        "kmeans_plus_plus",
    ),
    Case(
        "compress.cluster",
        "layers",
        "unknown layer name",
        lambda: compress.cluster(_m("student"), 8, layers=["nope"]),
        E,
        "nope",
        "layers of",
    ),
    Case(
        "compress.prune_units",
        "fraction",
        "outside [0, 1)",
        lambda: compress.prune_units(_m("student"), 1.0),
        E,
        "1.0",
        "[0, 1)",
    ),
    Case(
        "compress.prune_units",
        "layers",
        "unknown layer name",
        lambda: compress.prune_units(_m("student"), 0.5, layers=["nope"]),
        E,
        "nope",
        "layers of",
    ),
    Case(
        "compress.low_rank",
        "rank",
        "< 1",
        lambda: compress.low_rank(_m("student"), rank=0),
        E,
        "0",
        ">= 1",
    ),
    Case(
        "compress.low_rank",
        "energy",
        "outside (0, 1]",
        lambda: compress.low_rank(_m("student"), energy=0.0),
        E,
        "0.0",
        "(0, 1]",
    ),
    Case(
        "compress.low_rank",
        "layers",
        "unknown layer name",
        lambda: compress.low_rank(_m("student"), rank=1, layers=["nope"]),
        E,
        "nope",
        "layers of",
    ),
    Case(
        "compress.depthwise_separable",
        "depth_multiplier",
        "< 1",
        lambda: compress.depthwise_separable(_m("student"), depth_multiplier=0),
        E,
        "0",
        ">= 1",
    ),
    Case(
        "compress.depthwise_separable",
        "layers",
        "unknown layer name",
        lambda: compress.depthwise_separable(_m("student"), layers=["nope"]),
        E,
        "nope",
        "layers of",
    ),
    Case(
        "compress.lottery_ticket",
        "train_fn",
        "not callable",
        lambda: compress.lottery_ticket(_m("student"), _m("student").get_weights(), "fit"),
        T,
        "'fit'",
        "callable",
    ),
    Case(
        "compress.lottery_ticket",
        "initial_weights",
        "wrong number of arrays",
        lambda: compress.lottery_ticket(_m("student"), [], lambda m: None),
        E,
        "0",
        "get_weights",
    ),
    Case(
        "compress.lottery_ticket",
        "rounds",
        "< 1",
        lambda: compress.lottery_ticket(
            _m("student"), _m("student").get_weights(), lambda m: None, rounds=0
        ),
        E,
        "0",
        ">= 1",
    ),
    Case(
        "compress.lottery_ticket",
        "rewind_to",
        "unknown value",
        lambda: compress.lottery_ticket(
            _m("student"), _m("student").get_weights(), lambda m: None, rewind_to="start"
        ),
        E,
        "'start'",
        "initial",
    ),
    Case(
        "compress.lottery_ticket",
        "target_sparsity",
        "outside [0, 1)",
        lambda: compress.lottery_ticket(
            _m("student"), _m("student").get_weights(), lambda m: None, target_sparsity=1.0
        ),
        E,
        "1.0",
        "[0, 1)",
    ),
    Case(
        "compress.prune_iteratively",
        "fraction_per_round",
        "outside (0, 1)",
        lambda: compress.prune_iteratively(_m("student"), lambda m: None, fraction_per_round=0.0),
        E,
        "0.0",
        "(0, 1)",
    ),
    Case(
        "compress.prune_iteratively",
        "rounds",
        "< 1",
        lambda: compress.prune_iteratively(_m("student"), lambda m: None, rounds=0),
        E,
        "0",
        ">= 1",
    ),
    Case(
        "compress.prune_iteratively",
        "train_fn",
        "not callable",
        lambda: compress.prune_iteratively(_m("student"), None),
        T,
        "None",
        "callable",
    ),
    # Export
    Case(
        "export.to_tflite",
        "model",
        "not a Keras model",
        lambda: export.to_tflite("net", "/tmp/m.tflite"),
        T,
        "'net'",
        "keras.Model",
    ),
    Case(
        "export.to_tflite",
        "target",
        "unknown target",
        lambda: export.to_tflite(_m("student"), "/tmp/m.tflite", target="toaster"),
        E,
        "'toaster'",
        "watch",
    ),
    Case(
        "export.to_tflite",
        "path",
        "a directory",
        lambda: export.to_tflite(_m("student"), ROOT),
        E,
        ROOT,
        "file path",
    ),
    Case(
        "export.to_tflite",
        "representative_data",
        "missing for an int8 target",
        lambda: export.to_tflite(_m("student"), "/tmp/m.tflite", target="watch"),
        E,
        "None",
        "representative",
    ),
    Case(
        "export.to_tflite",
        "size_budget_bytes",
        "< 1",
        lambda: export.to_tflite(_m("student"), "/tmp/m.tflite", size_budget_bytes=0),
        E,
        "0",
        "positive integer",
    ),
    Case(
        "export.verify",
        "path",
        "missing file",
        lambda: export.verify(_missing(), X, Y),
        E,
        "no_such_dir",
        ".tflite file",
    ),
    Case(
        "export.to_c_array",
        "path",
        "missing file",
        lambda: export.to_c_array(_missing(), "/tmp"),
        E,
        "no_such_dir",
        ".tflite file",
    ),
    # Schemes
    Case(
        "schemes.mutual_learning",
        "models",
        "fewer than two",
        lambda: schemes.mutual_learning([_make()], _train()),
        E,
        "made",
        "two or more",
    ),
    Case(
        "schemes.mutual_learning",
        "peer_target",
        "unknown value",
        lambda: schemes.mutual_learning([_make(), _make()], _train(), peer_target="all"),
        E,
        "'all'",
        "each",
    ),
    Case(
        "schemes.mutual_learning",
        "alpha",
        "outside [0, 1]",
        lambda: schemes.mutual_learning([_make(), _make()], _train(), alpha=2),
        E,
        "2",
        "[0, 1]",
    ),
    Case(
        "schemes.mutual_learning",
        "epochs",
        "< 1",
        lambda: schemes.mutual_learning([_make(), _make()], _train(), epochs=0),
        E,
        "0",
        ">= 1",
    ),
    Case(
        "schemes.mutual_learning",
        "train",
        "empty arrays",
        lambda: schemes.mutual_learning([_make(), _make()], (X[:0], Y[:0])),
        E,
        "train",
        "non-zero",
    ),
    Case(
        "schemes.born_again",
        "generations",
        "< 1",
        lambda: schemes.born_again(_make, _m("teacher"), 0, _train()),
        E,
        "0",
        ">= 1",
    ),
    Case(
        "schemes.born_again",
        "make_model",
        "not callable",
        lambda: schemes.born_again("net", _m("teacher"), 1, _train()),
        E,
        "'net'",
        "callable",
    ),
    Case(
        "schemes.teacher_assistant",
        "teacher",
        "the same object as student",
        lambda: schemes.teacher_assistant(_m("student"), [_make()], _m("student"), _train()),
        E,
        "student",
        "different model",
    ),
    Case(
        "schemes.label_refinery",
        "max_rounds",
        "< 1",
        lambda: schemes.label_refinery(_make, _train(), _train(), max_rounds=0),
        E,
        "0",
        ">= 1",
    ),
    Case(
        "schemes.fsp_two_stage",
        "flows",
        "not pairs of layer pairs",
        lambda: schemes.fsp_two_stage(_m("teacher"), _m("student"), ["a"], _train()),
        E,
        "['a']",
        "flows",
    ),
    Case(
        "schemes.self_compress",
        "compress_fn",
        "not callable",
        lambda: schemes.self_compress(_m("student"), "prune", _train()),
        E,
        "'prune'",
        "callable",
    ),
    Case(
        "schemes.ensemble",
        "models",
        "empty list",
        lambda: schemes.ensemble([]),
        E,
        "[]",
        "non-empty",
    ),
]


def _cell(text):
    return text.replace("|", "\\|")


def table_markdown():
    """The README "Bad input" table: one row per case (paths of this checkout as ``<checkout>``)."""
    lines = [
        "| Entry point | Argument | Refused | Raises | Message names the value "
        "| and what is allowed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for case in CASES:
        lines.append(
            f"| `{case.entry}` | `{case.arg}` | {_cell(case.refused)} | `{case.error.__name__}` | "
            f'`{_cell(case.value).replace(ROOT, "<checkout>")}` | "...{_cell(case.allowed)}..." |'
        )
    return "\n".join(lines)


def test_case_ids_are_unique():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_naming_argument_and_value(case):
    with pytest.raises(case.error) as info:
        case.call()
    message = str(info.value)
    assert case.arg in message, message
    assert case.value in message, message
    assert case.allowed in message, message


def test_readme_lists_every_case():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert "## Bad input" in readme, "README.md has no '## Bad input' section"
    section = readme.split("## Bad input", 1)[1].split("\n## ", 1)[0]
    missing = [line for line in table_markdown().splitlines()[2:] if line not in section]
    assert not missing, f"README.md's Bad input table lacks {len(missing)} rows, e.g. {missing[:3]}"


if __name__ == "__main__":
    print(table_markdown())
