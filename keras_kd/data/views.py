"""Replayable augmentation: a Keras augmentation layer as a function of the image and a view key.

FKD (Shen & Xing 2022) draws the random views of each example once, labels each with the teacher,
and replays them; ``keras_kd.replay`` does that for the Distiller. What makes a view replayable is
that it can be recreated exactly from a small record: here a 32-bit key per view (the random
parameters of every per-example op are hashed from it) and, for a mixing layer, the partner's index
and the mixing coefficient. ``view_plan`` turns an ``augment`` layer into such a recipe and refuses,
naming it, any layer it cannot replay.

Replayable: ``RandomCrop``, ``RandomFlip``, ``RandomTranslation``, ``RandomRotation``,
``RandomZoom``, ``RandomContrast``; ``keras_kd.data.MixUp`` and ``CutMix`` (at most one mixing layer);
deterministic layers (``InputLayer``, ``Rescaling``, ``Resizing``, ``CenterCrop``, ``Normalization``,
``Reshape``, ``Permute``, ``Cropping1D/2D``, ``ZeroPadding1D/2D``); ``keras.Sequential`` of these.
Parameters are drawn per example from the layers' own ranges (Keras's ``RandomCrop`` and
``RandomContrast`` draw one per batch; ``MixUp``/``CutMix`` pick partners from the whole training
set rather than the batch).
"""

import numpy as np

from keras_kd._compat import keras, tf
from keras_kd.data import _view_ops
from keras_kd.data.mixing import CutMix, MixUp

_RANDOM = {
    "RandomCrop": _view_ops.crop,
    "RandomFlip": _view_ops.flip,
    "RandomTranslation": _view_ops.translation,
    "RandomRotation": _view_ops.rotation,
    "RandomZoom": _view_ops.zoom,
    "RandomContrast": _view_ops.contrast,
}
_MIXING = {MixUp: _view_ops.mixup, CutMix: _view_ops.cutmix}
_DETERMINISTIC = (
    "Rescaling",
    "Resizing",
    "CenterCrop",
    "Normalization",
    "Reshape",
    "Permute",
    "Cropping1D",
    "Cropping2D",
    "ZeroPadding1D",
    "ZeroPadding2D",
)
_SLOTS = 16  # hash slots per op: each op draws at most this many values per view
SUPPORTED = (
    "RandomCrop, RandomFlip, RandomTranslation, RandomRotation, RandomZoom, RandomContrast, "
    "keras_kd.data.MixUp, keras_kd.data.CutMix, deterministic layers ("
    + ", ".join(_DETERMINISTIC)
    + ") and keras.Sequential of these"
)


def _flatten(layer):
    if isinstance(layer, keras.Sequential):
        return [leaf for inner in layer.layers for leaf in _flatten(inner)]
    return [layer]


def _kind(layer):
    """The replay function of ``layer``, ``"skip"`` for an input layer, or ``None``."""
    if isinstance(layer, keras.layers.InputLayer):
        return "skip"
    if type(layer) in _MIXING:
        return _MIXING[type(layer)]
    name = type(layer).__name__
    keras_class = getattr(keras.layers, name, None)
    if keras_class is not None and type(layer) is keras_class:
        if name in _RANDOM:
            return _RANDOM[name]
        if name in _DETERMINISTIC:
            return "deterministic"
    return None


class ViewPlan:
    """An augmentation as ops keyed per view: ``render`` recreates any view from its record.

    Build it with ``view_plan(layer)``. Ops before the mixing layer run on the example and (with
    another key) on its partner; ops after it run on the mixed image.

    Args:
        layer: The Keras augmentation layer (a single layer or a ``keras.Sequential``).

    Raises:
        ValueError: If a layer cannot be replayed (named in the message), or there are several
            mixing layers.

    Example:
        >>> plan = ViewPlan(keras.Sequential([keras.layers.RandomFlip("horizontal"), MixUp(1.0)]))
        >>> plan.mixing is not None
        True
    """

    def __init__(self, layer):
        self.layer = layer
        self.before, self.after, self.mixing = [], [], None
        for position, leaf in enumerate(_flatten(layer)):
            kind = _kind(leaf)
            if kind is None:
                raise ValueError(
                    f"augment must be made of layers keras_kd can replay ({SUPPORTED}), received: "
                    f"augment={layer.name!r}, whose layer {leaf.name!r} "
                    f"({type(leaf).__name__}) cannot be replayed; drop replay_views to run the "
                    "teacher live on every batch"
                )
            if kind == "skip":
                continue
            if kind in _MIXING.values():
                if self.mixing is not None:
                    raise ValueError(
                        "augment may hold at most one layer that mixes examples when its views "
                        f"are replayed, received: augment={layer.name!r} with "
                        f"{self.mixing[0].name!r} and {leaf.name!r}"
                    )
                self.mixing = (leaf, kind, position * _SLOTS)
                continue
            (self.after if self.mixing else self.before).append((leaf, kind, position * _SLOTS))

    def config(self):
        """The plan as a JSON-able list of ``[class name, layer config]`` (part of a replay's key)."""
        ops = self.before + ([self.mixing] if self.mixing else []) + self.after
        return [[type(leaf).__name__, _plain(leaf.get_config())] for leaf, _, _ in ops]

    def draw_partners(self, count, views, seed):
        """Partner indices and coefficients of every view, or ``(None, None)`` without mixing.

        Args:
            count: Training examples ``n``.
            views: Views per example ``K``.
            seed: Integer seed.

        Returns:
            ``(partners, coefficients)``: int32 and float32 arrays of shape ``(n * K,)`` (row
            ``example * K + view``); each partner differs from its example when ``n > 1``;
            coefficients are Beta(alpha, alpha), as the mixing layer draws them.
        """
        if self.mixing is None:
            return None, None
        rng = np.random.default_rng([int(seed), 0x5EED])
        rows = count * views
        own = np.repeat(np.arange(count), views)
        shift = rng.integers(1, count, size=rows) if count > 1 else np.zeros(rows, np.int64)
        partners = ((own + shift) % count).astype(np.int32)
        alpha = self.mixing[0].alpha
        coefficients = rng.beta(alpha, alpha, size=rows).astype(np.float32)
        return partners, coefficients

    def render(self, images, keys, partners=None, coefficients=None):
        """Recreates views: the same keys (and partners) give the same images, in any batch.

        Args:
            images: The original examples, shape ``(batch, ...)``.
            keys: uint32 view keys, shape ``(batch,)`` (``keras_kd.data.views.view_keys``).
            partners: The partners' original examples (mixing plans only).
            coefficients: float32 mixing coefficients, shape ``(batch,)`` (mixing plans only).

        Returns:
            The views, float32.
        """
        images = self._apply(self.before, tf.cast(images, tf.float32), keys)
        if self.mixing is not None:
            partner_keys = _view_ops.partner_keys(keys)
            partners = self._apply(self.before, tf.cast(partners, tf.float32), partner_keys)
            leaf, mix, slot = self.mixing
            images = mix(leaf, images, partners, coefficients, keys, slot)
        return self._apply(self.after, images, keys)

    @staticmethod
    def _apply(ops, images, keys):
        for leaf, kind, slot in ops:
            if kind == "deterministic":
                images = tf.cast(leaf(images, training=False), tf.float32)
            else:
                images = kind(leaf, images, keys, slot)
        return images


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in ("name", "seed", "trainable")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def view_plan(layer):
    """Returns the ``ViewPlan`` of an augmentation layer, or raises naming what cannot be replayed.

    Paper: Shen & Xing (2022), "A Fast Knowledge Distillation Framework for Visual Recognition"
    (pre-drawn views with stored teacher outputs); Beyer, Zhai, Royer, Markeeva, Anil & Kolesnikov
    (2022), "Knowledge distillation: A good teacher is patient and consistent".

    Args:
        layer: A Keras augmentation layer or ``keras.Sequential`` of them.

    Returns:
        A ``ViewPlan``.

    Raises:
        ValueError: If a layer cannot be replayed, or there is more than one mixing layer.

    Example:
        >>> plan = view_plan(keras_kd.recipes.image_augmentation((28, 28, 1)))
        >>> keys = view_keys(0, tf.range(4))
        >>> views = plan.render(x[:4], keys)
    """
    return ViewPlan(layer)


view_keys = _view_ops.view_keys
