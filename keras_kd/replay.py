"""Replayed views: consistent teaching under augmentation at the cost of the teacher-output cache.

With random augmentation the teacher must see every view the student sees, so without replay it runs
live on every batch of every epoch. Following FKD (Shen & Xing 2022), ``ReplayCache`` draws ``K``
views of each example once, runs the teacher once per view and stores its outputs; every epoch then
gives each example under one of its views (view ``(offset + epoch) mod K``, so all ``K`` are used
every ``K`` epochs) together with that view's stored outputs. The student sees exactly the view the
teacher labeled: each view is recreated from its record (``keras_kd.data.views``: a 32-bit key, and
for mixing layers the partner's index and the coefficient), not stored as an image, so memory stays
near ``K`` x the teacher's outputs. The stored outputs live in memory or, with ``cache_dir``, in
``.npy`` files read through a memory map and reused by later runs; they are rebuilt when the
teacher, the data, the augmentation's config, ``K``, the seed or the teacher precision change.

The epoch stream is one ``tf.data`` pipeline over all epochs whose epoch ``e`` is a function of
``e`` alone, so ``keras_kd.resilience.BackupAndRestore`` resumes a killed run on the same batches.
"""

import hashlib
import json
import math
import os
import time

import numpy as np
from absl import logging

from keras_kd import cache
from keras_kd._checks import check_positive_int
from keras_kd._compat import tf
from keras_kd.data import views as views_lib

PARTNERS, COEFFICIENTS = "partners", "coefficients"


def check_replay(replay_views, replay_seed, augment, cache_teacher):
    """Checks the Distiller's replay arguments; returns ``(views, seed)`` or ``(None, seed)``."""
    seed = check_positive_int("replay_seed", replay_seed, minimum=0)
    views = check_positive_int("replay_views", replay_views, optional=True)
    if views is None:
        return None, seed
    if augment is None:
        raise ValueError(
            "replay_views replays views of the augment layer, so it needs augment=<layer>, "
            f"received: replay_views={replay_views}, augment=None"
        )
    if cache_teacher is False:
        raise ValueError(
            "replay_views stores teacher outputs, which cache_teacher=False forbids; use "
            f"cache_teacher='auto' or True, received: replay_views={replay_views}, "
            "cache_teacher=False"
        )
    views_lib.view_plan(augment)  # refuses a layer it cannot replay, before anything trains
    return views, seed


class ReplayCache(cache.TeacherCache):
    """Teacher outputs for ``views`` pre-drawn augmented views of every example, and their replay.

    Paper: Shen & Xing (2022), "A Fast Knowledge Distillation Framework for Visual Recognition";
    Beyer, Zhai, Royer, Markeeva, Anil & Kolesnikov (2022), "Knowledge distillation: A good teacher
    is patient and consistent" (the same view for teacher and student).

    Args:
        teacher_fn: ``teacher_fn(x) -> (logits, {name: feature})`` in inference mode.
        teacher: The teacher model or list of teachers (their weights are part of the key).
        augment: The augmentation layer (``keras_kd.data.views.view_plan`` must accept it).
        views: Views per example ``K``, >= 1.
        seed: Integer seed of the views, the partners and the epoch order.
        dtype: Storage dtype of the outputs, ``"float16"`` or ``"float32"``.
        top_k: Store only the top-k logits per view (see ``keras_kd.cache.TeacherCache``).
        cache_dir: Directory for the stored outputs (memory-mapped ``.npy`` files reused across
            runs); ``None`` keeps them in memory.

    Raises:
        ValueError: If ``augment`` holds a layer that cannot be replayed, or an argument is out
            of range.

    Example:
        >>> replay = ReplayCache(tap, teacher, augment, views=16)
        >>> dataset, steps = replay.dataset(x_train, y_train, batch_size=128, epochs=30)
    """

    def __init__(
        self,
        teacher_fn,
        teacher,
        augment,
        views,
        seed=0,
        dtype="float16",
        top_k=None,
        cache_dir=None,
    ):
        super().__init__(teacher_fn, teacher, dtype, top_k, cache_dir)
        self.views, self.seed = check_replay(views, seed, augment, "auto")
        self.plan = views_lib.view_plan(augment)
        self._render = tf.function(self.plan.render, reduce_retracing=True)
        self.teacher_examples = 0
        self.loaded = False
        self._images = None

    def _fingerprint(self, x):
        extra = [self.plan.config(), self.views, self.seed, self.dtype, self.top_k]
        digest = hashlib.blake2b(super()._fingerprint(x).encode(), digest_size=16)
        digest.update(json.dumps(extra, sort_keys=True).encode())
        return digest.hexdigest()

    def prepare(self, x, batch_size=256):
        """Draws the views of ``x`` and stores the teacher's outputs, unless they are current.

        Args:
            x: The training inputs, one array of shape ``(n, ...)``.
            batch_size: Views per teacher call.

        Returns:
            The stored arrays ``{name: array of n * K rows}`` (row ``example * K + view``).
        """
        key = self._fingerprint(x)
        if key == self._key:
            return self._stored
        self._images = tf.convert_to_tensor(x)  # one copy, shared by the teacher pass and replay
        path = os.path.join(self.cache_dir, f"replay_{key[:16]}") if self.cache_dir else None
        self.loaded = path is not None and os.path.isdir(path)
        if self.loaded:
            stored = {
                n[:-4]: np.load(os.path.join(path, n), mmap_mode="r") for n in os.listdir(path)
            }
        else:
            start = time.perf_counter()
            stored = self._build(x, batch_size)
            self.last_pass_seconds = time.perf_counter() - start
            self.passes += 1
            self.teacher_examples = len(x) * self.views
            logging.info(
                "keras_kd: teacher ran on %d views (%d per example) in %.2f s",
                self.teacher_examples,
                self.views,
                self.last_pass_seconds,
            )
            if path is not None:
                stored = _save(stored, path)
        self._stored, self._key = stored, key
        return stored

    def _inputs(self, x, rows, stored):
        """The original examples, keys and partners that recreate the views of ``rows``."""
        examples = rows // self.views
        keys = views_lib.view_keys(self.seed, rows)
        if self.plan.mixing is None:
            return tf.gather(x, examples), keys, None, None
        partners = tf.gather(stored[PARTNERS], rows)
        return (
            tf.gather(x, examples),
            keys,
            tf.gather(x, partners),
            tf.gather(stored[COEFFICIENTS], rows),
        )

    def _build(self, x, batch_size):
        partners, coefficients = self.plan.draw_partners(len(x), self.views, self.seed)
        mixing = {} if partners is None else {PARTNERS: partners, COEFFICIENTS: coefficients}
        images, rows_total, parts = self._images, len(x) * self.views, []
        if rows_total >= 2**32:
            raise ValueError(f"replay supports fewer than 2**32 views, received {rows_total}")
        on_device = {k: tf.convert_to_tensor(v) for k, v in mixing.items()}

        @tf.function(reduce_retracing=True)
        def label(rows):  # one graph per batch: render, teacher, encode
            return self._encode(
                *self._teacher_fn(self.plan.render(*self._inputs(images, rows, on_device)))
            )

        for start in range(0, rows_total, batch_size):
            rows = tf.range(start, min(start + batch_size, rows_total), dtype=tf.int64)
            parts.append({k: v.numpy() for k, v in label(rows).items()})
        stored = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        stored.update(mixing)
        self._verify(images, stored)
        return stored

    def _verify(self, images, stored):
        """Recreates a few views one by one and checks them against the batch and the outputs."""
        rows = tf.range(min(8, len(stored[next(iter(stored))])), dtype=tf.int64)
        batch = self._render(*self._inputs(images, rows, stored))
        alone = [
            self._render(*self._inputs(images, rows[i : i + 1], stored)) for i in range(len(rows))
        ]
        if not np.array_equal(batch.numpy(), np.concatenate([v.numpy() for v in alone])):
            raise ValueError(
                f"augment={self.plan.layer.name!r} does not recreate its views exactly "
                "(the same keys gave different images in different batches)"
            )
        if "logits" not in stored:
            return
        fresh = self._encode(*self._teacher_fn(batch))["logits"].numpy().astype(np.float32)
        expected = np.asarray(stored["logits"][: len(rows)], np.float32)
        if not np.allclose(fresh, expected, rtol=2e-2, atol=2e-2):
            raise ValueError(
                "the teacher's outputs for recreated views differ from the stored ones; the teacher "
                "must be deterministic in inference mode for its views to be replayed"
            )

    def dataset(
        self, x, y=None, sample_weight=None, batch_size=32, shuffle=True, epochs=1, initial_epoch=0
    ):
        """The training stream: every epoch, each example under one view with its stored outputs.

        Args:
            x: Training inputs, one array of shape ``(n, ...)``.
            y: Labels or ``None``.
            sample_weight: Per-example weights or ``None``.
            batch_size: Examples per step.
            shuffle: Shuffle the examples each epoch (the order of epoch ``e`` depends on
                ``seed`` and ``e`` only).
            epochs: The epoch ``fit`` ends at.
            initial_epoch: The epoch ``fit`` starts from.

        Returns:
            ``(dataset, steps_per_epoch)``. Elements are ``({INPUTS_KEY: views, TEACHER_KEY:
            stored outputs}, y, sample_weight)`` as ``keras_kd.cache`` makes them, for ``fit`` with
            ``steps_per_epoch``; the dataset spans epochs ``initial_epoch`` to ``epochs``.
        """
        stored = self.prepare(x)
        count, views, images = len(x), self.views, self._images
        # Without labels a sample weight has nothing to weigh (it weighs the hard loss).
        extras = (
            []
            if y is None
            else [tf.convert_to_tensor(a) for a in (y, sample_weight) if a is not None]
        )
        offsets = np.random.default_rng([self.seed, 1]).integers(0, views, count)
        offsets = tf.constant(offsets, tf.int64)
        outputs = {k: v for k, v in stored.items() if k not in (PARTNERS, COEFFICIENTS)}
        rows_of = _memory_rows(outputs) if self.cache_dir is None else _mapped_rows(outputs)
        mixing = {
            k: tf.convert_to_tensor(np.asarray(stored[k]))
            for k in (PARTNERS, COEFFICIENTS)
            if k in stored
        }

        def batch(examples, epoch):
            rows = examples * views + (tf.gather(offsets, examples) + epoch) % views
            view = self.plan.render(*self._inputs(images, rows, mixing))
            inputs = {cache.INPUTS_KEY: view, cache.TEACHER_KEY: rows_of(rows)}
            return (inputs, *[tf.gather(a, examples) for a in extras])

        def epoch_batches(epoch):
            order = tf.range(count, dtype=tf.int64)
            if shuffle:
                noise = tf.random.stateless_uniform(
                    [count], seed=tf.stack([tf.constant(self.seed, tf.int64), epoch])
                )
                order = tf.argsort(noise)
            order = tf.cast(order, tf.int64)
            return (
                tf.data.Dataset.from_tensor_slices(order)
                .batch(batch_size)
                .map(lambda e: (e, epoch))
            )

        steps = math.ceil(count / batch_size)
        dataset = tf.data.Dataset.range(initial_epoch, epochs).flat_map(epoch_batches)
        dataset = dataset.apply(
            tf.data.experimental.assert_cardinality(steps * max(epochs - initial_epoch, 0))
        )
        dataset = dataset.map(batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return dataset.prefetch(tf.data.AUTOTUNE), steps


def from_cache(teacher_cache, augment, views, seed=0):
    """A ``ReplayCache`` with the teacher and storage settings of a ``keras_kd.cache.TeacherCache``."""
    return ReplayCache(
        teacher_cache._teacher_fn,
        teacher_cache._teachers,
        augment,
        views,
        seed,
        teacher_cache.dtype,
        teacher_cache.top_k,
        teacher_cache.cache_dir,
    )


def _memory_rows(outputs):
    tensors = {k: tf.convert_to_tensor(np.asarray(v)) for k, v in outputs.items()}
    return lambda rows: {k: tf.gather(v, rows) for k, v in tensors.items()}


def _mapped_rows(outputs):
    names = sorted(outputs)

    def read(rows):
        return [np.asarray(outputs[n][rows]) for n in names]

    def rows_of(rows):
        values = tf.numpy_function(read, [rows], [tf.as_dtype(outputs[n].dtype) for n in names])
        for name, value in zip(names, values):
            value.set_shape([None, *outputs[name].shape[1:]])
        return dict(zip(names, values))

    return rows_of


def _save(stored, path):
    tmp = f"{path}.partial{os.getpid()}"
    os.makedirs(tmp, exist_ok=True)
    for name, array in stored.items():
        np.save(os.path.join(tmp, f"{name}.npy"), array)
    os.replace(tmp, path)
    return {n: np.load(os.path.join(path, f"{n}.npy"), mmap_mode="r") for n in stored}
