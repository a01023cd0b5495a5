"""Every public entry point refuses bad input before anything trains, converts or writes.

README.md's "Bad input" table is the specification. Each row names an entry point, the argument,
what is refused, the exception, the value the message prints as ``received: <arg>=<value>`` and a
fragment of what is allowed; ``<tmp_path>`` in a value stands for the test's temporary directory.
``CASES`` holds one call per row, keyed by (entry point, argument, refused). A row without a case
fails, and so does a case without a row.

Each test checks the exception's type, that the message holds exactly ``received: <arg>=<value>``
(the value ends the message or is followed by a space, comma, semicolon or closing parenthesis), the
allowed fragment before it, that no shared model's weights changed and that nothing was written to
the working directory (the test's ``tmp_path``), where every path argument points.
"""

import builtins
import functools
import os
import re

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import compress, data, export, losses, schemes
from keras_kd._compat import keras, tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE = (8, 8, 1)
TMP = "<tmp_path>"


def _net(prefix, classes=10, softmax=False):
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(2, 3, padding="same", name=f"{prefix}_conv")(inputs)
    x = keras.layers.Flatten(name=f"{prefix}_flat")(x)
    outputs = keras.layers.Dense(
        classes, activation="softmax" if softmax else None, name=f"{prefix}_logits"
    )(x)
    return keras.Model(inputs, outputs, name=prefix)


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="subclassed")
        self.dense = keras.layers.Dense(10)

    def call(self, x):
        return self.dense(x)


@functools.cache
def _models():
    """The models every case shares, built once; a test checks that none of them changes."""
    models = [_net(name) for name in ("teacher", "student", "t2", "peer_a", "peer_b")]
    models += [_net("student5", classes=5), _net("soft", softmax=True), _Subclassed()]
    models.append(keras.Sequential([keras.layers.Dense(10)], name="no_input"))
    return {model.name: model for model in models}


def _weights():
    """{name: weights} of every shared model; an unbuilt model has none."""
    return {name: m.get_weights() if m.built else [] for name, m in _models().items()}


def _m(name):
    return _models()[name]


def _distiller(**kwargs):
    return kd.Distiller(**{"student": _m("student"), "teacher": _m("teacher"), **kwargs})


SCC = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
CC = keras.losses.CategoricalCrossentropy(from_logits=True)
X = np.zeros((4, *SHAPE), np.float32)
Y = np.array([0, 1, 2, 3])


def _fit(x=X, y=Y, loss=SCC):
    distiller = _distiller()
    distiller.compile("adam", loss=loss)
    return distiller.fit(x, y, epochs=1, verbose=0)


def _dataset(x, y=Y):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(2)


def _never_trains(model):
    raise AssertionError("train_fn was called: the arguments were checked after training began")


def _lottery(**kwargs):
    student = _m("student")
    args = {"initial_weights": student.get_weights(), "train_fn": _never_trains, **kwargs}
    return compress.lottery_ticket(student, **args)


def _peer():
    return _m("peer_a")


def _load_lambda_file(t):
    """Saves a model holding a Lambda layer to ``t``, loads it without unsafe=True, removes it."""
    path = os.path.join(t, "lambda.keras")
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Lambda(lambda x: 2 * x, name="double")]
    )
    model.save(path)
    try:
        return kd.load_model(path)
    finally:
        os.remove(path)


_PEERS = ("peer_a", "peer_b")
_TRAIN = (X, Y)

# (entry point, argument, refused) -> a call that must be refused; ``t`` is the temporary directory.
_CASE_LIST = [
    ("Distiller", "student", "not a Keras model", lambda t: _distiller(student="net")),
    ("Distiller", "student", "None", lambda t: _distiller(student=None)),
    (
        "Distiller",
        "student",
        "Sequential without an input shape",
        lambda t: _distiller(student=_m("no_input")),
    ),
    (
        "Distiller",
        "teacher",
        "subclassed model never called",
        lambda t: _distiller(teacher=_m("subclassed")),
    ),
    ("Distiller", "teacher", "not a Keras model", lambda t: _distiller(teacher=42)),
    (
        "Distiller",
        "teacher",
        "the same object as student",
        lambda t: _distiller(teacher=_m("student")),
    ),
    ("Distiller", "teacher", "empty list", lambda t: _distiller(teacher=[])),
    (
        "Distiller",
        "teacher",
        "the same model twice",
        lambda t: _distiller(teacher=[_m("teacher"), _m("teacher")]),
    ),
    (
        "Distiller",
        "teacher",
        "class count differs from student",
        lambda t: _distiller(student=_m("student5")),
    ),
    ("Distiller", "teacher", "ends in softmax", lambda t: _distiller(teacher=_m("soft"))),
    ("Distiller", "alpha", "outside [0, 1]", lambda t: _distiller(alpha=1.5)),
    ("Distiller", "alpha", "not a number", lambda t: _distiller(alpha="0.1")),
    ("Distiller", "losses", "empty list", lambda t: _distiller(losses=[])),
    ("Distiller", "losses", "entry not a loss layer", lambda t: _distiller(losses=["kd"])),
    (
        "Distiller",
        "losses",
        "two losses with one name",
        lambda t: _distiller(losses=[losses.LogitsKD(), losses.LogitsKD()]),
    ),
    (
        "Distiller",
        "losses",
        "feature loss with several teachers",
        lambda t: _distiller(
            teacher=[_m("teacher"), _m("t2")],
            losses=[losses.AttentionTransfer([("teacher_conv", "student_conv")])],
        ),
    ),
    (
        "Distiller",
        "pairs",
        "naming an unknown layer",
        lambda t: _distiller(losses=[losses.AttentionTransfer([("t_nope", "student_conv")])]),
    ),
    ("Distiller", "loss_weights", "wrong count", lambda t: _distiller(loss_weights=[1.0, 2.0])),
    ("Distiller", "loss_weights", "negative", lambda t: _distiller(loss_weights=[-1.0])),
    ("Distiller", "cache_teacher", "unknown mode", lambda t: _distiller(cache_teacher="sometimes")),
    ("Distiller", "cache_dtype", "unknown dtype", lambda t: _distiller(cache_dtype="int8")),
    ("Distiller", "cache_top_k", "not in [1, classes]", lambda t: _distiller(cache_top_k=0)),
    ("Distiller", "augment", "not a Keras layer", lambda t: _distiller(augment="mixup")),
    (
        "Distiller",
        "augment",
        "mixing layer with alpha > 0",
        lambda t: _distiller(augment=data.MixUp(name="mix_up")),
    ),
    (
        "Distiller.compile",
        "loss",
        "missing while alpha > 0",
        lambda t: _distiller().compile("adam"),
    ),
    (
        "Distiller.compile",
        "loss",
        "expects probabilities",
        lambda t: _distiller().compile("adam", loss=keras.losses.SparseCategoricalCrossentropy()),
    ),
    (
        "Distiller.compile",
        "loss",
        "unknown name",
        lambda t: _distiller().compile("adam", loss="no_such_loss"),
    ),
    (
        "Distiller.compile",
        "optimizer",
        "unknown name",
        lambda t: _distiller().compile("no_such_opt", loss=SCC),
    ),
    ("Distiller.fit", "y", "None with alpha > 0", lambda t: _fit(y=None)),
    ("Distiller.fit", "y", "every example unlabeled", lambda t: _fit(y=np.full(4, -1))),
    (
        "Distiller.fit",
        "y",
        "class id >= the student's classes",
        lambda t: _fit(y=np.array([0, 1, 2, 10])),
    ),
    ("Distiller.fit", "y", "one-hot labels with a sparse loss", lambda t: _fit(y=np.eye(10)[:4])),
    ("Distiller.fit", "y", "class ids with a categorical loss", lambda t: _fit(loss=CC)),
    (
        "Distiller.fit",
        "y",
        "one-hot width differs from classes",
        lambda t: _fit(y=np.eye(12)[:4], loss=CC),
    ),
    ("Distiller.fit", "y", "length differs from x", lambda t: _fit(y=Y[:3])),
    ("Distiller.fit", "x", "empty arrays", lambda t: _fit(x=X[:0], y=Y[:0])),
    ("Distiller.fit", "x", "empty dataset", lambda t: _fit(x=_dataset(X).take(0), y=None)),
    (
        "Distiller.fit",
        "x",
        "example shape differs from the student's input",
        lambda t: _fit(x=np.zeros((4, 9, 9, 1), np.float32)),
    ),
    (
        "Distiller.fit",
        "x",
        "dataset of a wrong example shape",
        lambda t: _fit(x=_dataset(np.zeros((4, 3), np.float32)), y=None),
    ),
    ("losses.get", "name", "unknown loss name", lambda t: losses.get("kdd")),
    ("losses.get", "name", "not a string", lambda t: losses.get(3)),
    ("LogitsKD", "temperature", "<= 0", lambda t: losses.LogitsKD(0)),
    ("LogitsKD", "temperature", "not a number", lambda t: losses.LogitsKD("hot")),
    ("LogitsKD", "temperature", "infinite", lambda t: losses.LogitsKD(float("inf"))),
    ("LogitsKD", "standardize", "not a bool", lambda t: losses.LogitsKD(standardize="yes")),
    (
        "LogitsKD",
        "teacher",
        "class count differs from student (call)",
        lambda t: losses.LogitsKD()(tf.zeros((2, 10)), tf.zeros((2, 5))),
    ),
    ("DKD", "alpha", "negative", lambda t: losses.DKD(alpha=-1.0)),
    ("DKD", "beta", "not a number", lambda t: losses.DKD(beta="8")),
    ("DKD", "temperature", "<= 0", lambda t: losses.DKD(temperature=-2)),
    ("DKD", "standardize", "not a bool", lambda t: losses.DKD(standardize=1)),
    (
        "DKD",
        "labels",
        "missing (call)",
        lambda t: losses.DKD()(tf.zeros((2, 10)), tf.zeros((2, 10))),
    ),
    (
        "MultiTeacherKD",
        "teacher_weights",
        "negative weight",
        lambda t: losses.MultiTeacherKD(teacher_weights=[1.0, -1.0]),
    ),
    ("MultiTeacherKD", "temperature", "<= 0", lambda t: losses.MultiTeacherKD(temperature=0.0)),
    (
        "MultiTeacherKD",
        "standardize",
        "not a bool",
        lambda t: losses.MultiTeacherKD(standardize=None),
    ),
    ("DIST", "beta", "negative", lambda t: losses.DIST(beta=-1.0)),
    ("DIST", "gamma", "negative", lambda t: losses.DIST(gamma=-1.0)),
    ("DIST", "temperature", "<= 0", lambda t: losses.DIST(temperature=0)),
    ("FitNetHint", "pairs", "empty list", lambda t: losses.FitNetHint([])),
    ("FitNetHint", "pairs", "a bare string", lambda t: losses.FitNetHint("t_conv")),
    (
        "FitNetHint",
        "adapter",
        "unknown value",
        lambda t: losses.FitNetHint([("a", "b")], adapter="big"),
    ),
    ("AttentionTransfer", "p", "< 1", lambda t: losses.AttentionTransfer([("a", "b")], p=0)),
    (
        "AttentionTransfer",
        "pairs",
        "entry not a name pair",
        lambda t: losses.AttentionTransfer([("a", 1)]),
    ),
    ("FSP", "flows", "not pairs of layer pairs", lambda t: losses.FSP(["a"])),
    ("NST", "kernel", "unknown kernel", lambda t: losses.NST([("a", "b")], kernel="rbf")),
    ("NST", "degree", "< 1", lambda t: losses.NST([("a", "b")], degree=0)),
    ("NST", "constant", "negative", lambda t: losses.NST([("a", "b")], constant=-1.0)),
    ("RKD", "distance_weight", "negative", lambda t: losses.RKD(distance_weight=-1.0)),
    ("RKD", "angle_weight", "not a number", lambda t: losses.RKD(angle_weight=None)),
    (
        "SimilarityPreserving",
        "pairs",
        "empty list",
        lambda t: losses.SimilarityPreserving(pairs=[]),
    ),
    ("PKT", "eps", "<= 0", lambda t: losses.PKT(eps=0.0)),
    ("CorrelationCongruence", "gamma", "<= 0", lambda t: losses.CorrelationCongruence(gamma=0.0)),
    ("CorrelationCongruence", "order", "< 1", lambda t: losses.CorrelationCongruence(order=0)),
    ("data.load", "name", "unknown dataset", lambda t: data.load("mnist9")),
    ("data.load", "name", "not a string", lambda t: data.load(7)),
    ("data.load", "name", "IDX directory without the files", lambda t: data.load("idx:" + t)),
    (
        "data.load",
        "data_dir",
        "given for a non-tfds dataset",
        lambda t: data.load("digits", data_dir=t),
    ),
    ("data.load_mnist1d", "num_samples", "< 2", lambda t: data.load_mnist1d(num_samples=1)),
    (
        "data.load_mnist1d",
        "train_split",
        "outside (0, 1)",
        lambda t: data.load_mnist1d(train_split=1.0),
    ),
    ("data.MixUp", "alpha", "<= 0", lambda t: data.MixUp(alpha=0)),
    ("data.CutMix", "alpha", "not a number", lambda t: data.CutMix(alpha="1")),
    (
        "data.mix",
        "weights",
        "one weight per example missing",
        lambda t: data.mix(tf.zeros((4, 2)), tf.zeros(3), tf.range(4)),
    ),
    (
        "data.with_unlabeled",
        "x_unlabeled",
        "example shape differs from x",
        lambda t: data.with_unlabeled(X, Y, np.zeros((2, 3))),
    ),
    (
        "data.with_unlabeled",
        "y",
        "length differs from x",
        lambda t: data.with_unlabeled(X, Y[:2], X),
    ),
    (
        "data.label_with_teacher",
        "teacher",
        "not a Keras model",
        lambda t: data.label_with_teacher("t", X),
    ),
    (
        "data.label_with_teacher",
        "batch_size",
        "< 1",
        lambda t: data.label_with_teacher(_m("teacher"), X, batch_size=0),
    ),
    (
        "data.label_with_teacher",
        "dtype",
        "unknown dtype",
        lambda t: data.label_with_teacher(_m("teacher"), X, dtype="int8"),
    ),
    (
        "data.label_with_teacher",
        "x",
        "empty",
        lambda t: data.label_with_teacher(_m("teacher"), X[:0]),
    ),
    ("compress.prune", "model", "not a Keras model", lambda t: compress.prune("net", 0.5)),
    (
        "compress.prune",
        "model",
        "subclassed model",
        lambda t: compress.prune(_m("subclassed"), 0.5),
    ),
    (
        "compress.prune",
        "model",
        "Sequential without an input shape",
        lambda t: compress.prune(_m("no_input"), 0.5),
    ),
    (
        "compress.prune",
        "target_sparsity",
        "outside [0, 1)",
        lambda t: compress.prune(_m("student"), 1.5),
    ),
    (
        "compress.prune",
        "schedule",
        "unknown schedule",
        lambda t: compress.prune(_m("student"), 0.5, schedule="cubic"),
    ),
    (
        "compress.prune",
        "layers",
        "unknown layer name",
        lambda t: compress.prune(_m("student"), 0.5, schedule="constant", layers=["nope"]),
    ),
    (
        "compress.prune",
        "frequency",
        "< 1",
        lambda t: compress.prune(_m("student"), 0.5, frequency=0),
    ),
    (
        "compress.prune",
        "m_by_n",
        "not (m, n) with 0 < m < n",
        lambda t: compress.prune(_m("student"), 0.5, m_by_n=(4, 2)),
    ),
    (
        "compress.quantize",
        "preserve",
        "unknown value",
        lambda t: compress.quantize(_m("student"), preserve="all"),
    ),
    (
        "compress.quantize",
        "skip_layers",
        "unknown layer name",
        lambda t: compress.quantize(_m("student"), skip_layers=["nope"]),
    ),
    ("compress.cluster", "clusters", "< 2", lambda t: compress.cluster(_m("student"), 1)),
    (
        "compress.cluster",
        "init",
        "unknown init",
        lambda t: compress.cluster(_m("student"), 8, init="bogus"),
    ),
    (
        "compress.cluster",
        "layers",
        "unknown layer name",
        lambda t: compress.cluster(_m("student"), 8, layers=["nope"]),
    ),
    (
        "compress.prune_units",
        "fraction",
        "outside [0, 1)",
        lambda t: compress.prune_units(_m("student"), 1.0),
    ),
    (
        "compress.prune_units",
        "layers",
        "unknown layer name",
        lambda t: compress.prune_units(_m("student"), 0.5, layers=["nope"]),
    ),
    ("compress.low_rank", "rank", "< 1", lambda t: compress.low_rank(_m("student"), rank=0)),
    (
        "compress.low_rank",
        "energy",
        "outside (0, 1]",
        lambda t: compress.low_rank(_m("student"), energy=0.0),
    ),
    (
        "compress.low_rank",
        "layers",
        "unknown layer name",
        lambda t: compress.low_rank(_m("student"), rank=1, layers=["nope"]),
    ),
    (
        "compress.depthwise_separable",
        "depth_multiplier",
        "< 1",
        lambda t: compress.depthwise_separable(_m("student"), depth_multiplier=0),
    ),
    (
        "compress.depthwise_separable",
        "layers",
        "unknown layer name",
        lambda t: compress.depthwise_separable(_m("student"), layers=["nope"]),
    ),
    ("compress.lottery_ticket", "train_fn", "not callable", lambda t: _lottery(train_fn="fit")),
    (
        "compress.lottery_ticket",
        "initial_weights",
        "wrong number of arrays",
        lambda t: _lottery(initial_weights=_m("student").get_weights()[:-1]),
    ),
    (
        "compress.lottery_ticket",
        "initial_weights",
        "not a list of arrays",
        lambda t: _lottery(initial_weights=7),
    ),
    ("compress.lottery_ticket", "rounds", "< 1", lambda t: _lottery(rounds=0)),
    (
        "compress.lottery_ticket",
        "rewind_to",
        "unknown value",
        lambda t: _lottery(rewind_to="start"),
    ),
    (
        "compress.lottery_ticket",
        "target_sparsity",
        "outside (0, 1)",
        lambda t: _lottery(target_sparsity=1.0),
    ),
    (
        "compress.prune_iteratively",
        "fraction_per_round",
        "outside (0, 1)",
        lambda t: compress.prune_iteratively(_m("student"), _never_trains, fraction_per_round=0.0),
    ),
    (
        "compress.prune_iteratively",
        "rounds",
        "< 1",
        lambda t: compress.prune_iteratively(_m("student"), _never_trains, rounds=0),
    ),
    (
        "compress.prune_iteratively",
        "train_fn",
        "not callable",
        lambda t: compress.prune_iteratively(_m("student"), None),
    ),
    (
        "export.to_tflite",
        "model",
        "not a Keras model",
        lambda t: export.to_tflite("net", os.path.join(t, "m.tflite")),
    ),
    (
        "export.to_tflite",
        "target",
        "unknown target",
        lambda t: export.to_tflite(_m("student"), os.path.join(t, "m.tflite"), target="toaster"),
    ),
    ("export.to_tflite", "path", "a directory", lambda t: export.to_tflite(_m("student"), t)),
    (
        "export.to_tflite",
        "representative_data",
        "missing for an int8 target",
        lambda t: export.to_tflite(_m("student"), os.path.join(t, "m.tflite"), target="watch"),
    ),
    (
        "export.to_tflite",
        "size_budget_bytes",
        "< 1",
        lambda t: export.to_tflite(_m("student"), os.path.join(t, "m.tflite"), size_budget_bytes=0),
    ),
    (
        "export.verify",
        "path",
        "missing file",
        lambda t: export.verify(os.path.join(t, "m.tflite"), X, Y),
    ),
    (
        "export.to_c_array",
        "path",
        "missing file",
        lambda t: export.to_c_array(os.path.join(t, "m.tflite"), t),
    ),
    (
        "schemes.mutual_learning",
        "models",
        "fewer than two",
        lambda t: schemes.mutual_learning([_m("peer_a")], _TRAIN),
    ),
    (
        "schemes.mutual_learning",
        "peer_target",
        "unknown value",
        lambda t: schemes.mutual_learning([_m(p) for p in _PEERS], _TRAIN, peer_target="all"),
    ),
    (
        "schemes.mutual_learning",
        "alpha",
        "outside [0, 1]",
        lambda t: schemes.mutual_learning([_m(p) for p in _PEERS], _TRAIN, alpha=2),
    ),
    (
        "schemes.mutual_learning",
        "epochs",
        "< 1",
        lambda t: schemes.mutual_learning([_m(p) for p in _PEERS], _TRAIN, epochs=0),
    ),
    (
        "schemes.mutual_learning",
        "train",
        "empty arrays",
        lambda t: schemes.mutual_learning([_m(p) for p in _PEERS], (X[:0], Y[:0])),
    ),
    (
        "schemes.born_again",
        "generations",
        "< 1",
        lambda t: schemes.born_again(_m("teacher"), _peer, _TRAIN, generations=0),
    ),
    (
        "schemes.born_again",
        "make_model",
        "not callable",
        lambda t: schemes.born_again(_m("teacher"), "net", _TRAIN, generations=1),
    ),
    (
        "schemes.teacher_assistant",
        "student",
        "the same object as teacher",
        lambda t: schemes.teacher_assistant(_m("student"), [_m("peer_a")], _m("student"), _TRAIN),
    ),
    (
        "schemes.label_refinery",
        "max_rounds",
        "< 1",
        lambda t: schemes.label_refinery(_peer, _TRAIN, _TRAIN, max_rounds=0),
    ),
    (
        "schemes.fsp_two_stage",
        "flows",
        "not pairs of layer pairs",
        lambda t: schemes.fsp_two_stage(_m("teacher"), _m("student"), _TRAIN, flows=["a"]),
    ),
    (
        "schemes.self_compress",
        "compress_fn",
        "not callable",
        lambda t: schemes.self_compress(_m("student"), "prune", _TRAIN),
    ),
    ("schemes.ensemble", "models", "empty list", lambda t: schemes.ensemble([])),
    ("load_model", "path", "missing file", lambda t: kd.load_model(os.path.join(t, "m.keras"))),
    ("load_model", "path", "holds a Lambda layer, unsafe=False", _load_lambda_file),
    (
        "load_model",
        "unsafe",
        "not a bool",
        lambda t: kd.load_model(os.path.join(t, "m.keras"), unsafe="no"),
    ),
    ("bridge.from_keras3", "model", "not a Keras 3 model", lambda t: kd.bridge.from_keras3("net")),
    (
        "recipes.cosine_adam",
        "learning_rate",
        "<= 0",
        lambda t: kd.recipes.cosine_adam(0, total_steps=10),
    ),
    ("recipes.cosine_adam", "total_steps", "< 1", lambda t: kd.recipes.cosine_adam(1e-3, 0)),
    (
        "recipes.scheduled_adam",
        "schedule",
        "not a known schedule",
        lambda t: kd.recipes.scheduled_adam(1e-3, 10, "step"),
    ),
    (
        "recipes.scheduled_adam",
        "learning_rate",
        "<= 0, constant",
        lambda t: kd.recipes.scheduled_adam(0, 10, "constant"),
    ),
    ("recipes.steps", "batch_size", "< 1", lambda t: kd.recipes.steps(100, 1, batch_size=0)),
    (
        "recipes.image_augmentation",
        "input_shape",
        "rank not 2 or 3",
        lambda t: kd.recipes.image_augmentation((8,)),
    ),
]
CASES = {(entry, arg, refused): call for entry, arg, refused, call in _CASE_LIST}

# One table row: | `entry` | `arg` | refused | `Error` | `value` | "...allowed..." |
_ROW = re.compile(
    r"^\| `(?P<entry>[^`]+)` \| `(?P<arg>[^`]+)` \| (?P<refused>.+?) \| `(?P<error>\w+)` \| "
    r'`(?P<value>[^`]+)` \| "\.\.\.(?P<allowed>.+)\.\.\." \|$'
)


def _readme_table():
    """The Bad input table as ({(entry, arg, refused): row}, [rows that do not parse])."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    if "\n## Bad input\n" not in readme:
        return {}, ["README.md has no '## Bad input' section"]
    section = readme.split("\n## Bad input\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")][2:]  # no header
    rows, bad = {}, []
    for line in lines:
        match = _ROW.match(line)
        if not match:
            bad.append(f"does not parse: {line}")
            continue
        row = {name: text.replace("\\|", "|") for name, text in match.groupdict().items()}
        key = (row["entry"], row["arg"], row["refused"])
        if key in rows:
            bad.append(f"listed twice: {line}")
        rows[key] = row
    return rows, bad


ROWS, BAD_ROWS = _readme_table()
KEYS = list(ROWS) + [key for key in CASES if key not in ROWS]


def _id(key):
    return re.sub(r"[^a-z0-9]+", "-", " ".join(key).lower()).strip("-")


def test_readme_table_parses_and_each_case_is_listed_once():
    assert len(ROWS) >= 100 and not BAD_ROWS, BAD_ROWS
    assert len(CASES) == len(_CASE_LIST), "two cases share (entry point, argument, refused)"


@pytest.mark.parametrize("key", KEYS, ids=[_id(key) for key in KEYS])
def test_bad_input_is_refused_as_the_readme_row_says(key, tmp_path, monkeypatch):
    assert key in CASES, f"README.md's Bad input row {key} has no case in CASES"
    assert key in ROWS, f"the case {key} has no row in README.md's Bad input table"
    row = ROWS[key]
    expected_error = getattr(builtins, row["error"])
    before = _weights()
    monkeypatch.chdir(tmp_path)

    with pytest.raises(Exception) as info:
        CASES[key](str(tmp_path))

    message = str(info.value)
    assert isinstance(info.value, expected_error), f"{type(info.value).__name__}: {message}"
    received = "received: {arg}={value}".format(
        arg=row["arg"], value=row["value"].replace(TMP, str(tmp_path))
    )
    match = re.search(re.escape(received) + r"(?=$|[\s,;)])", message)
    assert match, f"no {received!r} in: {message}"
    assert row["allowed"] in message[: match.start()], message
    after = _weights()
    for name, weights in before.items():
        assert len(after[name]) == len(weights), f"model {name!r} changed"
        assert all(map(np.array_equal, after[name], weights)), f"model {name!r} changed"
    assert not os.listdir(tmp_path), f"files written: {os.listdir(tmp_path)}"
