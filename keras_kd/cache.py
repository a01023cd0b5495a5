"""Teacher-output cache: run the teacher once per dataset instead of once per step of every epoch.

When the inputs are deterministic (numpy arrays, or a ``tf.data.Dataset`` whose functions hold no
random op), the teacher outputs that the losses need (logits and tapped features) are computed in one
pass and stored beside the inputs, compactly (float16 by default, optionally only the top-k logits).
Each example carries its own teacher outputs through shuffling, so a student never distills against
outputs computed for a different input. A dataset with random augmentation keeps the teacher live.
"""

import hashlib
import os
import time

import numpy as np
from absl import logging

from keras_kd._checks import check_positive_int
from keras_kd._compat import tf
from keras_kd.teachers.foreign import ForeignTeacher

INPUTS_KEY = "keras_kd_inputs"
TEACHER_KEY = "keras_kd_teacher"
_UNKNOWN_OPS = ("PyFunc", "EagerPyFunc", "PyFuncStateless")
MODES = ("auto", True, False)


def split_batch(x):
    """Splits a batch's ``x`` into ``(inputs, stored teacher outputs)``, ``None`` when uncached.

    Decided at trace time: ``x`` carries teacher outputs when it is the dict ``annotate`` makes.
    """
    if isinstance(x, dict) and TEACHER_KEY in x and INPUTS_KEY in x:
        return x[INPUTS_KEY], x[TEACHER_KEY]
    return x, None


def check_mode(cache_teacher):
    """Returns ``cache_teacher`` or raises ``ValueError`` unless it is "auto", True or False."""
    if not any(cache_teacher is m or cache_teacher == m and isinstance(m, str) for m in MODES):
        raise ValueError(
            f'cache_teacher must be "auto", True or False, received: cache_teacher={cache_teacher!r}'
        )
    return cache_teacher


def random_ops(dataset):
    """Returns the op types in ``dataset``'s graph that make its elements differ between passes.

    Shuffling only reorders elements and is not counted; random ops (augmentation) and Python
    functions (whose behaviour cannot be inspected) are.
    """
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(dataset._as_serialized_graph().numpy())
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops |= {node.op for node in function.node_def}
    return sorted(op for op in ops if "Random" in op or "Rng" in op or op in _UNKNOWN_OPS)


def _shuffles(dataset):
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(dataset._as_serialized_graph().numpy())
    return any(node.op.startswith("Shuffle") for node in graph.node)


def decide(x, cache_teacher, augmenting=False):
    """Chooses live or cached teacher outputs for the training input ``x``.

    Args:
        x: What ``fit`` received as ``x``.
        cache_teacher: ``"auto"``, ``True`` or ``False``.
        augmenting: Whether the Distiller augments each batch (then the teacher must run live).

    Returns:
        ``(use_cache, reason)``.

    Raises:
        ValueError: If ``cache_teacher=True`` but ``x`` cannot be cached safely (random augmentation,
            an infinite dataset, or a generator).
    """
    if cache_teacher is False:
        return False, "cache_teacher=False"
    if augmenting:
        problem = "the Distiller augments every batch (augment=...)"
    elif isinstance(x, tf.data.Dataset):
        found = random_ops(x)
        problem = None
        if found:
            problem = f"the dataset has ops that change its elements between passes: {found}"
        elif x.cardinality() == tf.data.INFINITE_CARDINALITY:
            problem = "the dataset is infinite (repeat() without a count)"
        if problem is None:
            return True, "a tf.data.Dataset without random ops"
    elif _is_arrays(x):
        return True, "array inputs are deterministic"
    else:
        problem = f"inputs of type {type(x).__name__} cannot be checked for determinism"
    if cache_teacher is True:
        raise ValueError(
            f"cache_teacher=True, but {problem}; the cache would pair examples with teacher outputs "
            "computed for other inputs. Use cache_teacher='auto' or False (the teacher then runs live)."
        )
    return False, problem + ", so the teacher runs live on every batch"


def _is_arrays(x):
    leaves = tf.nest.flatten(x)
    return bool(leaves) and all(isinstance(a, (np.ndarray, tf.Tensor)) for a in leaves)


class TeacherCache:
    """Teacher outputs for one training input, computed once and rebuilt when teacher or data change.

    Args:
        teacher_fn: ``teacher_fn(x) -> (logits, {name: feature})`` in inference mode.
        teacher: The teacher model, or a list of teachers (their weights are part of the cache key).
        dtype: Storage dtype, ``"float16"`` (default) or ``"float32"``.
        top_k: Store only the ``top_k`` largest logits per example plus the mean of the rest, for
            many-class problems. ``None`` stores every logit.
        cache_dir: Directory for datasets that do not fit in memory (written with
            ``tf.data.Dataset.save``); ``None`` keeps the cache in memory.

    Raises:
        ValueError: If ``dtype`` or ``top_k`` is not one of the values above.

    Example:
        >>> cache = TeacherCache(tap, teacher, dtype="float16")
        >>> x_with_teacher = cache.annotate(x_train, batch_size=256)
    """

    def __init__(self, teacher_fn, teacher, dtype="float16", top_k=None, cache_dir=None):
        if dtype not in ("float16", "float32"):
            raise ValueError(
                f'cache_dtype must be "float16" or "float32", received: cache_dtype={dtype!r}'
            )
        top_k = check_positive_int("cache_top_k", top_k, optional=True)
        self._teacher_fn = tf.function(teacher_fn, reduce_retracing=True)
        self._teachers = list(teacher) if isinstance(teacher, (list, tuple)) else [teacher]
        self.dtype, self.top_k, self.cache_dir = dtype, top_k, cache_dir
        self._key = None
        self.tag = ""  # the teacher's precision, part of the key (keras_kd.teachers.precision)
        self._stored = None
        self.passes = 0
        self.last_pass_seconds = None

    def annotate(self, x, batch_size, shuffle=True):
        """Returns ``x`` with the teacher outputs attached, computing them only when needed.

        Arrays come back as ``{INPUTS_KEY: x, TEACHER_KEY: outputs}`` for ``fit`` to shuffle and batch
        together; a dataset comes back as a dataset of such elements (rebatched with example-level
        reshuffling when the source shuffled).
        """
        key = self._fingerprint(x)
        if key != self._key:
            start = time.perf_counter()
            self._stored = self._build(x, batch_size)
            self.last_pass_seconds = time.perf_counter() - start
            self.passes += 1
            self._key = key
            logging.info(
                "keras_kd: teacher outputs cached in %.2f s (pass %d)",
                self.last_pass_seconds,
                self.passes,
            )
        if isinstance(x, tf.data.Dataset):
            return self._stored
        return {INPUTS_KEY: x, TEACHER_KEY: self._stored}

    def _fingerprint(self, x):
        digest = hashlib.blake2b(self.tag.encode(), digest_size=16)
        for teacher in self._teachers:
            if isinstance(teacher, ForeignTeacher):
                digest.update(teacher.fingerprint())
                continue
            for weight in teacher.weights:
                digest.update(np.ascontiguousarray(weight.numpy()).data)
        if isinstance(x, tf.data.Dataset):
            digest.update(x._as_serialized_graph().numpy())
        else:
            for leaf in tf.nest.flatten(x):
                digest.update(np.ascontiguousarray(np.asarray(leaf)).data)
        return digest.hexdigest()

    def _encode(self, logits, features):
        dtype = getattr(tf, self.dtype)
        stored = {f"feature/{name}": tf.cast(value, dtype) for name, value in features.items()}
        logits = tf.cast(logits, tf.float32)
        if self.top_k is None or self.top_k >= logits.shape[-1]:
            stored["logits"] = tf.cast(logits, dtype)
            return stored
        values, indices = tf.math.top_k(logits, k=self.top_k)
        classes = logits.shape[-1]
        rest_mean = (tf.reduce_sum(logits, -1) - tf.reduce_sum(values, -1)) / (classes - self.top_k)
        stored.update(
            {
                "top_k_values": tf.cast(values, dtype),
                "top_k_indices": tf.cast(indices, tf.int32),
                "rest_mean": tf.cast(rest_mean, dtype),
            }
        )
        return stored

    def _batches(self, x, batch_size):
        if isinstance(x, tf.data.Dataset):
            for element in x:
                element = element if isinstance(element, tuple) else (element,)
                yield element, self._encode(*self._teacher_fn(element[0]))
        else:
            count = len(tf.nest.flatten(x)[0])
            for start in range(0, count, batch_size):
                window = slice(start, start + batch_size)
                batch = tf.nest.map_structure(lambda a, w=window: a[w], x)
                yield None, self._encode(*self._teacher_fn(batch))

    def _build(self, x, batch_size):
        if not isinstance(x, tf.data.Dataset):
            parts = [stored for _, stored in self._batches(x, batch_size)]
            return {k: np.concatenate([p[k].numpy() for p in parts]) for k in parts[0]}
        shuffle = _shuffles(x)
        annotated = self._annotated_dataset(x, batch_size)
        if shuffle:
            batch = _batch_size_of(x)
            annotated = (
                annotated.unbatch()
                .shuffle(_shuffle_buffer(annotated), reshuffle_each_iteration=True)
                .batch(batch)
            )
        return annotated.prefetch(tf.data.AUTOTUNE)

    def _annotated_dataset(self, x, batch_size):
        def elements():
            for element, stored in self._batches(x, batch_size):
                yield ({INPUTS_KEY: element[0], TEACHER_KEY: stored}, *element[1:])

        first = next(iter(elements()))
        signature = tf.nest.map_structure(
            lambda t: tf.TensorSpec([None, *t.shape[1:]], t.dtype), first
        )
        generated = tf.data.Dataset.from_generator(elements, output_signature=signature)
        if self.cache_dir is None:
            materialized = generated.cache()
            for _ in materialized:  # the one teacher pass happens here, not during the first epoch
                pass
            return materialized
        path = os.path.join(self.cache_dir, f"teacher_cache_{self._fingerprint(x)[:12]}")
        if not os.path.isdir(path):
            tmp = path + ".partial"
            generated.save(tmp)
            os.replace(tmp, path)
        return tf.data.Dataset.load(path)


def _batch_size_of(dataset):
    first = next(iter(dataset))
    first = first[0] if isinstance(first, tuple) else first
    return int(tf.shape(tf.nest.flatten(first)[0])[0])


def _shuffle_buffer(dataset):
    examples = 0
    for element in dataset:
        examples += int(tf.shape(tf.nest.flatten(element)[0])[0])
        if examples >= 100_000:
            break
    return max(examples, 1)


def decode(stored, num_classes):
    """Turns stored teacher outputs back into float32 ``(logits, {name: feature})``.

    Top-k storage is expanded to ``num_classes`` logits: the stored top-k values at their classes and
    the stored mean of the other logits everywhere else.
    """
    features = {
        k[len("feature/") :]: tf.cast(v, tf.float32)
        for k, v in stored.items()
        if k.startswith("feature/")
    }
    if "logits" in stored:
        return tf.cast(stored["logits"], tf.float32), features
    rest = tf.cast(stored["rest_mean"], tf.float32)[..., None]
    values = tf.cast(stored["top_k_values"], tf.float32)
    one_hot = tf.one_hot(stored["top_k_indices"], depth=num_classes)
    logits = rest + tf.reduce_sum(one_hot * (values - rest)[..., None], axis=-2)
    return logits, features
