"""The non-finite guard: a training step whose loss or gradients hold NaN or Inf applies nothing.

``NonFiniteGuard`` is the component ``keras_kd.Distiller`` uses in every ``fit``, and any
``train_step`` of your own can use it the same way:

1. ``watch(model)`` before ``fit``: the state that a forward pass changes in its layers (batch-norm
   statistics, QAT quantizer ranges, tfmot's pruning step) is copied after every finite step.
2. In the step, ``check(term, name)`` on each loss term, and ``minimize(optimizer, total,
   variables, tape)`` instead of ``optimizer.minimize``: the update waits for every check and for
   one on each gradient, so a non-finite value fails the step before anything is applied.
3. ``fit`` inside ``with guard.stopping():``, which turns the failure into a ``FloatingPointError``
   naming the term or gradient and puts back the forward-pass state of the last finite step.

Under a distribution strategy the update is still withheld, but the failed step's forward-pass
state stays (``watch`` copies nothing there).
"""

import contextlib
import re

from keras_kd._compat import keras, tf

__all__ = ["NonFiniteGuard", "StateGuard", "check_finite"]

_MARKER = "keras_kd non-finite loss term"
_PATTERN = re.compile(_MARKER + r" '([^']+)'")


def check_finite(value, name):
    """Returns ``value``; the step fails with ``name`` in the error if it holds a NaN or Inf.

    Args:
        value: A tensor, e.g. one loss term.
        name: What ``value`` is, for the ``FloatingPointError`` of ``NonFiniteGuard.stopping``.

    Returns:
        ``value``, through ``tf.debugging.check_numerics``: make the loss depend on the result.
    """
    return tf.debugging.check_numerics(value, f"{_MARKER} '{name}'")


def _floating_point_error(error):
    """The ``FloatingPointError`` for the error of a failed ``check_finite``, else ``None``."""
    # TensorFlow reports a failed check only in the error's text, so the name is read back from it.
    match = _PATTERN.search(str(getattr(error, "message", error)))
    if match is None:
        return None
    name = match.group(1)
    subject = repr(name) if name.startswith("gradient of ") else f"loss term {name!r}"
    return FloatingPointError(
        f"{subject} became NaN or Inf; training stopped before applying that "
        "step, so the student keeps its last finite weights. Lower the learning rate, check the "
        "inputs for NaN, or clip gradients (optimizer clipnorm=...)."
    )


class StateGuard:
    """Keeps the last finite values of the state that a forward pass changes, to undo a failed step.

    A training step changes more than the weights the optimizer updates: the forward pass itself
    updates batch-normalization statistics, QAT quantizer ranges, tfmot's pruning step and masks.
    When a step turns out non-finite, those updates have already run; ``restore`` puts back the
    values copied after the last finite step.

    Paper: none (the practice of skipping non-finite steps of dynamic loss scaling, Micikevicius et
    al. 2018, "Mixed Precision Training", extended to the forward-pass state).

    Args:
        variables: The variables to guard (non-trainable state of the student and loss layers).

    Example:
        >>> guard = StateGuard(student.non_trainable_variables)
        >>> guard.restore()  # after a FloatingPointError
    """

    def __init__(self, variables):
        self._pairs = [
            (v, tf.Variable(v.read_value(), trainable=False, name="last_finite", shape=v.shape))
            for v in variables
        ]

    def record(self):
        """Copies the current values in: before ``fit``, and in each step after its update."""
        for variable, shadow in self._pairs:
            shadow.assign(variable.read_value())

    def restore(self):
        """Puts back the values of the last finite step."""
        for variable, shadow in self._pairs:
            variable.assign(shadow.read_value())


class NonFiniteGuard:
    """Stops training at the first NaN or Inf loss term or gradient, before that step's update.

    See the module docstring for the three places it acts. A ``LossScaleOptimizer`` keeps its own
    handling in ``minimize`` (it skips non-finite steps and lowers the scale, which mixed precision
    relies on). Hold it as a plain attribute: its copies are not weights of the model.

    Paper: none (the practice of skipping non-finite steps of dynamic loss scaling, Micikevicius et
    al. 2018, "Mixed Precision Training").

    Example:
        >>> guard = NonFiniteGuard()                       # e.g. in a keras.Model's __init__
        >>> # train_step: loss = guard.check(loss, "loss"); guard.minimize(opt, loss, vars, tape)
        >>> guard.watch(model)
        >>> with guard.stopping():
        ...     model.fit(x, y)                            # FloatingPointError('loss term ...')
    """

    def __init__(self):
        self._state = None

    check = staticmethod(check_finite)

    def watch(self, *layers, distributed=False):
        """Records the forward-pass state to restore after a failed step; call before each ``fit``.

        Args:
            *layers: The layers or models whose non-trainable weights (the state a forward pass
                changes) to guard; the first call fixes them (later calls re-record).
            distributed: Whether the model trains under a distribution strategy (nothing is
                copied then).
        """
        if self._state is None:
            state = [w for layer in layers for w in layer.non_trainable_weights]
            self._state = StateGuard([] if distributed else state)
        self._state.record()

    def minimize(self, optimizer, total, variables, tape):
        """Applies the gradients of ``total`` only when ``total`` and every gradient are finite.

        ``total`` must depend on the ``check`` of every loss term; the update then waits for those
        checks and for one on each gradient (a finite loss can still have a NaN gradient, e.g.
        from NaN inputs behind a ReLU). The watched state is recorded after a finite update.

        Args:
            optimizer: The Keras optimizer.
            total: The scalar loss to minimize.
            variables: The variables to update.
            tape: The ``tf.GradientTape`` that recorded ``total``.
        """
        if isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer):
            optimizer.minimize(total, variables, tape=tape)
            return
        gradients = tape.gradient(total, variables)
        checks = [total]
        for gradient, variable in zip(gradients, variables):
            if gradient is None:
                continue
            values = gradient.values if isinstance(gradient, tf.IndexedSlices) else gradient
            # x * 0 is 0 for every finite x and NaN otherwise: one cheap reduction per variable.
            checks.append(check_finite(tf.reduce_sum(values * 0), f"gradient of {variable.name}"))
        with tf.control_dependencies(checks):
            optimizer.apply_gradients(
                [(g, v) for g, v in zip(gradients, variables) if g is not None]
            )
            if self._state is not None:
                self._state.record()

    @contextlib.contextmanager
    def stopping(self):
        """Context for ``fit``: a failed check raises ``FloatingPointError``, state restored.

        Raises:
            FloatingPointError: If a ``check`` failed inside; other errors pass unchanged.
        """
        try:
            yield self
        except tf.errors.InvalidArgumentError as error:
            failure = _floating_point_error(error)
            if failure is None:
                raise
            if self._state is not None:
                self._state.restore()
            raise failure from None
