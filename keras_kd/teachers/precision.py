"""The teacher at the hardware's fastest precision: float32, or bfloat16 where that is faster.

The teacher only runs forward, outside the gradient tape, so its passes (cache, replayed views, live
steps) can run in bfloat16 without touching the student's training. On Intel CPUs with AMX a CNN
teacher's pass is several times faster under the ``mixed_bfloat16`` policy; elsewhere bfloat16 is
not reliably faster, so ``"auto"`` chooses it only where ``keras_kd.report.describe_machine()``
finds AMX. A bfloat16 copy is trusted only after a sample of the training inputs gives the same
top-1 class as float32 on at least ``MIN_AGREEMENT`` of its examples; otherwise float32 is kept.

Paper: Kalamkar et al. (2019), "A Study of BFLOAT16 for Deep Learning Training"; Micikevicius et al.
(2018), "Mixed Precision Training".
"""

import copy

import numpy as np
from absl import logging

from keras_kd._checks import is_graph_model
from keras_kd._compat import keras, tf

PRECISIONS = ("auto", "float32", "bfloat16")
MIN_AGREEMENT = 0.99
SAMPLE = 1024


def check_precision(teacher_precision):
    """Returns ``teacher_precision`` or raises unless it is "auto", "float32" or "bfloat16".

    Args:
        teacher_precision: The Distiller's argument.

    Returns:
        ``teacher_precision``.

    Raises:
        ValueError: For any other value, naming it.

    Example:
        >>> check_precision("auto")
        'auto'
    """
    if not isinstance(teacher_precision, str) or teacher_precision not in PRECISIONS:
        raise ValueError(
            'teacher_precision must be "auto", "float32" or "bfloat16", received: '
            f"teacher_precision={teacher_precision!r}"
        )
    return teacher_precision


def _to_bfloat16(layer_config, keep_float32):
    """Sets every layer of a (nested) model config to mixed_bfloat16, except inputs and outputs."""
    for layer in layer_config.get("layers", []):
        inner = layer.get("config", {})
        if layer.get("class_name") in ("Sequential", "Functional", "Model"):
            _to_bfloat16(inner, ())
        elif layer.get("class_name") != "InputLayer" and inner.get("name") not in keep_float32:
            inner["dtype"] = "mixed_bfloat16"


def bfloat16_copy(model):
    """A copy of a tf_keras Sequential or functional model that computes in bfloat16.

    Every layer gets the ``mixed_bfloat16`` policy (float32 weights, bfloat16 compute) except the
    inputs and the output layers, which stay float32 so that logits keep full precision.

    Args:
        model: A built tf_keras ``Sequential`` or functional model.

    Returns:
        The copy with ``model``'s weights, or ``None`` for a model that cannot be rebuilt from its
        config (a subclassed model, or a layer Keras cannot deserialize).

    Example:
        >>> fast = bfloat16_copy(teacher)
        >>> fast.layers[1].compute_dtype
        'bfloat16'
    """
    if not is_graph_model(model):
        return None
    config = copy.deepcopy(model.get_config())
    if isinstance(model, keras.Sequential):
        keep = {config["layers"][-1]["config"].get("name")}
    else:
        keep = {entry[0] for entry in config.get("output_layers", [])}
    _to_bfloat16(config, keep)
    try:
        clone = type(model).from_config(config)
        clone.set_weights(model.get_weights())
    except (TypeError, ValueError) as error:
        logging.info("keras_kd: no bfloat16 copy of %s: %s", model.name, error)
        return None
    return clone


def top1_agreement(reference, other):
    """Fraction of examples whose argmax (top-1 class) is the same in two arrays of logits.

    Args:
        reference: Logits, shape ``(examples, classes)`` (e.g. the float32 teacher's).
        other: Logits of the same shape (e.g. its bfloat16 copy's).

    Returns:
        A float in [0, 1].

    Example:
        >>> top1_agreement([[1.0, 2.0], [3.0, 0.0]], [[0.5, 2.5], [0.0, 1.0]])
        0.5
    """
    reference, other = np.asarray(reference, np.float32), np.asarray(other, np.float32)
    return float(np.mean(reference.argmax(-1) == other.argmax(-1)))


def sample_of(x, size=SAMPLE):
    """Up to ``size`` training inputs from arrays or a ``tf.data.Dataset``; ``None`` otherwise."""
    if isinstance(x, (np.ndarray, tf.Tensor)):
        return np.asarray(x[:size])
    if isinstance(x, tf.data.Dataset):
        parts, count = [], 0
        for element in x:
            batch = element[0] if isinstance(element, tuple) else element
            if not isinstance(batch, tf.Tensor):
                return None
            parts.append(batch.numpy())
            count += len(parts[-1])
            if count >= size:
                break
        return np.concatenate(parts)[:size] if parts else None
    return None


def _logits(model, x):
    return np.concatenate(
        [
            np.asarray(model(x[i : i + 256], training=False), np.float32)
            for i in range(0, len(x), 256)
        ]
    )


def choose(teacher_precision, teachers, x, machine=None, min_agreement=MIN_AGREEMENT):
    """Decides the precision of the teacher's passes and returns the models to run.

    Args:
        teacher_precision: ``"auto"`` (bfloat16 on CPUs with AMX, after the agreement check;
            float32 elsewhere), ``"float32"`` or ``"bfloat16"`` (after the agreement check).
        teachers: The teacher models (tf_keras models or ``keras_kd.teachers.ForeignTeacher``).
        x: Training inputs (arrays or a ``tf.data.Dataset``), sampled for the check.
        machine: ``keras_kd.report.describe_machine()``'s dict; measured when ``None``.
        min_agreement: Top-1 agreement with float32 below which bfloat16 is not trusted.

    Returns:
        ``(models, report)``: the models to run in place of ``teachers`` (bfloat16 copies where
        chosen, the same objects otherwise) and ``{"requested", "precision", "agreement",
        "reason"}``. The choice is logged.

    Example:
        >>> models, report = choose("auto", [teacher], x_train)
        >>> report["precision"]
        'float32'
    """
    report = {"requested": teacher_precision, "precision": "float32", "agreement": None}
    if teacher_precision == "float32":
        report["reason"] = "teacher_precision='float32'"
        return list(teachers), _logged(report)
    if teacher_precision == "auto":
        if machine is None:
            from keras_kd.report.machine import describe_machine

            machine = describe_machine()
        if not machine.get("amx"):
            report["reason"] = (
                f"auto: {machine.get('cpu', 'this CPU')} has no AMX, where bfloat16 is not "
                "reliably faster than float32"
            )
            return list(teachers), _logged(report)
    copies = [bfloat16_copy(t) if isinstance(t, keras.Model) else None for t in teachers]
    if any(c is None for c in copies):
        names = [t.name for t, c in zip(teachers, copies) if c is None]
        report["reason"] = (
            f"teachers {names} have no bfloat16 copy (not a Sequential or functional tf_keras model)"
        )
        return list(teachers), _logged(report)
    sample = sample_of(x)
    if sample is None:
        report["reason"] = "no sample of the inputs to check bfloat16 against float32"
        return list(teachers), _logged(report)
    agreement = min(
        top1_agreement(_logits(t, sample), _logits(c, sample)) for t, c in zip(teachers, copies)
    )
    report["agreement"] = agreement
    if agreement < min_agreement:
        report["reason"] = (
            f"bfloat16 agrees with float32 on top-1 for {agreement:.2%} of {len(sample)} inputs, "
            f"below {min_agreement:.0%}"
        )
        return list(teachers), _logged(report, warn=True)
    report.update(
        precision="bfloat16",
        reason=f"top-1 agreement with float32 {agreement:.2%} on {len(sample)} inputs",
    )
    return copies, _logged(report)


def _logged(report, warn=False):
    log = logging.warning if warn else logging.info
    log(
        "keras_kd: teacher runs in %s (teacher_precision=%r: %s)",
        report["precision"],
        report["requested"],
        report["reason"],
    )
    return report
