"""What a pruned model needs while it trains: tfmot's callbacks, and a check of its schedule.

``keras_kd.compress.prune``, ``lottery_ticket`` and ``prune_iteratively`` mark the models they
return with ``training_callbacks`` (``keras_kd.model_callbacks.require_callbacks``): such a model's
own ``fit`` and ``keras_kd.Distiller.fit`` then add the callbacks without the user naming them.
"""

import warnings

import tensorflow_model_optimization as tfmot  # noqa: E402  (after _compat: tfmot needs tf_keras)

from keras_kd import model_callbacks
from keras_kd._compat import keras
from keras_kd.compress import _common


def training_callbacks(model, log_dir=None):
    """Returns the Keras callbacks that training ``model`` needs because of its tfmot wrappers.

    A model with pruning wrappers (from ``keras_kd.compress.prune``) needs
    ``tfmot.sparsity.keras.UpdatePruningStep`` to advance the pruning schedule and apply the masks,
    and gets ``ScheduleCheck`` (a warning when ``fit`` ends before the schedule reaches its target
    sparsity); with ``log_dir`` it also gets ``PruningSummaries`` (sparsity per layer for
    TensorBoard, which needs the ``tensorboard`` package). The models ``keras_kd.compress`` returns
    carry this function (``mark``), so only a model that lost the mark (a ``clone_model`` copy, a
    file loaded by Keras rather than ``keras_kd.load_model``, a model pruned with tfmot directly) needs
    it passed to ``fit`` by hand.

    Paper: Zhu & Gupta (2017), "To prune, or not to prune: exploring the efficacy of pruning for
    model compression" (the gradual pruning schedule these callbacks drive).

    Args:
        model: A Keras model, compressed or not.
        log_dir: TensorBoard log directory for the pruning summaries, or ``None``.

    Returns:
        A list of callbacks, empty when the model has no pruning wrapper.

    Example:
        >>> model.fit(x, y, epochs=2, callbacks=training_callbacks(model))
    """
    if not _common.has_wrapper(model, _common.PruneLowMagnitude):
        return []
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep(), ScheduleCheck()]
    if log_dir is not None:
        callbacks.append(tfmot.sparsity.keras.PruningSummaries(log_dir=str(log_dir)))
    return callbacks


def mark(model):
    """Marks ``model`` so that its ``fit`` and ``keras_kd.Distiller.fit`` add ``training_callbacks``.

    Paper: none (the callback contract of tfmot's pruning wrappers, Zhu & Gupta 2017).

    Args:
        model: A Keras model with pruning wrappers, made by ``keras_kd.compress``.

    Returns:
        ``model``.

    Example:
        >>> copy = mark(keras.models.clone_model(pruned))  # a clone loses the mark; this restores it
    """
    return model_callbacks.require_callbacks(model, training_callbacks)


def first_update(begin_step, frequency):
    """The first step >= 1 at which tfmot updates the masks: ``(s - begin_step) % frequency == 0``."""
    start = max(begin_step, 1)
    return begin_step + -(-(start - begin_step) // frequency) * frequency


def target_step(wrapper):
    """The training step at which a pruning wrapper's mask first holds its final sparsity.

    Args:
        wrapper: A tfmot ``PruneLowMagnitude`` layer.

    Returns:
        The step (steps count from 1, see ``prune``), or ``None`` for a schedule class other than
        tfmot's ``ConstantSparsity`` and ``PolynomialDecay``.
    """
    if wrapper.sparsity_m_by_n is not None:
        return 1  # tfmot sets m-by-n masks at step 1 only
    schedule = wrapper.pruning_schedule
    known = (tfmot.sparsity.keras.ConstantSparsity, tfmot.sparsity.keras.PolynomialDecay)
    if not isinstance(schedule, known):
        return None  # e.g. lottery's HoldMask, which never updates the mask
    config = schedule.get_config()["config"]
    if isinstance(schedule, tfmot.sparsity.keras.ConstantSparsity):
        return first_update(config["begin_step"], config["frequency"])
    return config["end_step"]


def schedule_problems(model, planned_steps):
    """Describes each pruning schedule of ``model`` that ``planned_steps`` more steps cannot finish.

    A wrapper's schedule is finished when its step counter (kept across ``fit`` calls) has passed
    ``target_step``; otherwise ``planned_steps`` more training steps must reach it.

    Args:
        model: A Keras model (or a ``keras_kd.Distiller``) holding ``PruneLowMagnitude`` wrappers.
        planned_steps: Training steps about to run, an int >= 0.

    Returns:
        A list of messages, one per distinct schedule that ends too late (empty when all fit).

    Example:
        >>> pruned = prune(student, 0.5, schedule="constant")  # frequency=100: step 100
        >>> len(schedule_problems(pruned, 90)), len(schedule_problems(pruned, 100))
        (1, 0)
    """
    late = {}
    for layer in model.submodules:
        if not isinstance(layer, _common.PruneLowMagnitude):
            continue
        needed = target_step(layer)
        done = max(int(keras.backend.get_value(layer.pruning_step)), 0)
        if needed is not None and done < needed and done + planned_steps < needed:
            config = layer.pruning_schedule.get_config()["config"]
            key = (type(layer.pruning_schedule).__name__, needed, done, str(config))
            late.setdefault(key, (config, layer.sparsity_m_by_n, []))[2].append(layer.layer.name)
    messages = []
    for (kind, needed, done, _), (config, m_by_n, names) in late.items():
        runs = f"the {planned_steps} steps this fit runs (to step {done + planned_steps})"
        where = f"layer(s) {names}"
        if m_by_n is not None:
            messages.append(
                f"m_by_n pruning sets its masks at step 1 only, which {runs} do not include, so "
                f"{where} stay unpruned, received: m_by_n={m_by_n}"
            )
        elif kind == "PolynomialDecay":
            messages.append(
                f"end_step must be <= {done + planned_steps}, the last of {runs}, or {where} "
                f"never reach target_sparsity={config['final_sparsity']}, received: "
                f"end_step={needed}"
            )
        else:
            arg = "begin_step" if config["begin_step"] > done + planned_steps else "frequency"
            messages.append(
                f"{arg} must let the first mask update (step {needed}) fall within {runs}, or "
                f"{where} stay unpruned at 0 instead of target_sparsity="
                f"{config['target_sparsity']}, received: {arg}={config[arg]}"
            )
    return messages


class ScheduleCheck(keras.callbacks.Callback):
    """Warns when ``fit`` will stop before a pruning schedule reaches its target sparsity.

    At the first epoch of each ``fit`` it computes the steps that ``fit`` will run
    (``params["steps"]`` per epoch times the epochs left) and warns (``UserWarning``) with each
    message of ``schedule_problems``, naming the schedule's step and the last step ``fit`` runs.
    When the steps per epoch are unknown (a dataset of unknown length without
    ``steps_per_epoch``) it says nothing. ``training_callbacks`` returns one for every pruned model,
    so the ``fit`` of a model from ``keras_kd.compress.prune`` and ``keras_kd.Distiller.fit`` add it.

    Paper: Zhu & Gupta (2017), "To prune, or not to prune: exploring the efficacy of pruning for
    model compression" (the gradual schedule it checks).

    Example:
        >>> model.fit(x, y, epochs=2, callbacks=[UpdatePruningStep(), ScheduleCheck()])
    """

    def on_train_begin(self, logs=None):
        self._checked = False

    def on_epoch_begin(self, epoch, logs=None):
        if getattr(self, "_checked", False):
            return
        self._checked = True
        steps, epochs = self.params.get("steps"), self.params.get("epochs")
        if not steps or not epochs:
            return
        for message in schedule_problems(self.model, int(steps) * max(int(epochs) - epoch, 0)):
            warnings.warn(message, UserWarning, stacklevel=2)
