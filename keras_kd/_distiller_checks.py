"""Checks of the Distiller's arguments (teachers, losses, pairs, the hard-label loss).

The generic checks (numbers, fractions, models) are in ``keras_kd._checks``; these are the ones
that know the loss contract and the teacher kinds, shared by the Distiller and the schemes.
"""

from keras_kd._checks import check_model, is_finite_at_least, is_graph_model
from keras_kd._compat import keras, tf
from keras_kd.losses import FeatureLoss, LogitLoss
from keras_kd.teachers import foreign, resolve


def check_logits_model(role, model):
    """``check_model`` for a model that must output logits: also refuses a final softmax."""
    check_model(role, model)
    last = model.layers[-1] if is_graph_model(model) and model.layers else None
    if (
        isinstance(last, keras.layers.Softmax)
        or getattr(last, "activation", None) is keras.activations.softmax
    ):
        raise ValueError(
            f"{role} model {model.name!r} ends in a softmax (layer {last.name!r}); {role} must "
            "output "
            f"logits, so remove the final softmax activation, received: {role}={model.name!r}"
        )
    return model


def output_shape(model):
    if isinstance(model, foreign.ForeignTeacher):
        return model.output_shape
    if is_graph_model(model):
        return tf.TensorShape(model.outputs[0].shape)
    return None


def check_output_shapes(teacher, student):
    t_shape, s_shape = output_shape(teacher), output_shape(student)
    if t_shape is None or s_shape is None:
        return
    if t_shape.rank != s_shape.rank or t_shape[-1] != s_shape[-1]:
        raise ValueError(
            f"teacher {teacher.name!r} outputs shape {t_shape} but student {student.name!r} "
            "outputs shape "
            f"{s_shape}; both must output logits over the same classes, received: "
            f"teacher={teacher.name!r}, student={student.name!r}"
        )


def check_teachers(teacher, student):
    """Returns the teachers as a list: one model, or several whose soft targets are averaged.

    A teacher that is not a tf_keras model (Keras 3, SavedModel, .tflite, callable) comes back
    wrapped by ``keras_kd.teachers.as_teacher``.
    """
    teachers = list(teacher) if isinstance(teacher, (list, tuple)) else [teacher]
    if not teachers:
        raise ValueError(
            "teacher must be a model or a non-empty list of models, received: teacher=[]"
        )
    given = list(teachers)
    for index, model in enumerate(given):
        role = "teacher" if len(teachers) == 1 else f"teacher[{index}]"
        # Keras 3 models, SavedModels, .tflite files and callables become ForeignTeachers.
        model = teachers[index] = resolve.as_teacher(model, role, student)
        if not isinstance(model, foreign.ForeignTeacher):
            check_logits_model(role, model)
        if model is student:
            raise ValueError(
                f"{role} and student must be different models, received: {role}={model.name!r}, "
                "the same object as student"
            )
        check_output_shapes(model, student)
    if len({id(model) for model in given}) != len(given):
        raise ValueError(
            "teacher must list each model only once, received: "
            f"teacher={[m.name for m in teachers]}"
        )
    return teachers


def check_losses(losses, num_teachers=1):
    if isinstance(losses, keras.layers.Layer):
        losses = [losses]
    losses = list(losses)
    if not losses:
        raise ValueError(
            "losses must hold at least one distillation loss layer, received: losses=[]"
        )
    for loss in losses:
        if not isinstance(loss, (LogitLoss, FeatureLoss)):
            kind = "a Keras layer" if isinstance(loss, keras.layers.Layer) else "not a layer"
            raise TypeError(
                "each entry of losses must be a Keras layer that subclasses "
                "keras_kd.losses.LogitLoss or keras_kd.losses.FeatureLoss (README: Writing your "
                f"own loss), received: losses={losses!r}, whose entry {loss!r} is {kind} of "
                "neither class"
            )
    if num_teachers > 1:
        single = [loss.name for loss in losses if isinstance(loss, FeatureLoss)]
        if single:
            raise ValueError(
                f"with {num_teachers} teachers every loss must be a logit loss, which sees them "
                f"as one ensemble (keras_kd.losses.LogitLoss.ensemble); feature losses {single} "
                f"take one teacher's features, received: losses={single}"
            )
    names = [loss.name for loss in losses]
    if len(set(names)) != len(names):
        raise ValueError(
            f"losses must have distinct names (they name the metrics), received: losses={names}"
        )
    return losses


def check_loss_weights(loss_weights, count, alpha):
    if loss_weights is None:
        return [1.0 - alpha] * count
    weights = list(loss_weights) if not isinstance(loss_weights, (int, float)) else [loss_weights]
    if len(weights) != count:
        raise ValueError(
            f"loss_weights needs one weight per distillation loss ({count}), received: "
            f"loss_weights={loss_weights!r}"
        )
    if not all(is_finite_at_least(w) for w in weights):
        raise ValueError(
            f"loss_weights must be finite numbers >= 0, received: loss_weights={loss_weights!r}"
        )
    return [float(w) for w in weights]


def check_optimizer(optimizer):
    """An optimizer name must be one Keras knows; instances and configs are left to Keras."""
    if isinstance(optimizer, str):
        allowed = "a keras.optimizers.Optimizer or a Keras optimizer name (e.g. 'adam', 'sgd')"
        _check_known_name(keras.optimizers.get, "optimizer", optimizer, allowed)


def _check_known_name(get, arg, name, allowed):
    """Raises ``ValueError`` unless ``get(name)`` (a Keras registry look-up) knows ``name``."""
    try:
        get(name)
    except ValueError:
        raise ValueError(f"{arg} must be {allowed}, received: {arg}={name!r}") from None


def check_hard_loss(loss, alpha):
    """The hard-label loss given to compile: required when alpha > 0, a known name, on logits."""
    if loss is None and alpha > 0:
        raise ValueError(
            f"compile needs loss= (the hard-label loss) because alpha={alpha} > 0; loss must be a "
            "Keras loss on logits, e.g. "
            "keras.losses.SparseCategoricalCrossentropy(from_logits=True), "
            "or set alpha=0, received: loss=None"
        )
    check_from_logits(loss)


def check_from_logits(loss):
    if loss is None:
        return
    if isinstance(loss, str):
        allowed = (
            "a Keras loss name (e.g. 'sparse_categorical_crossentropy' with from_logits, better "
            "an instance), a keras.losses.Loss or a callable"
        )
        _check_known_name(keras.losses.get, "loss", loss, allowed)
        expects_probabilities = loss.endswith("crossentropy")
    else:
        config = loss.get_config() if isinstance(loss, keras.losses.Loss) else {}
        expects_probabilities = config.get("from_logits") is False
    if expects_probabilities:
        raise ValueError(
            f"loss={loss_text(loss)} expects probabilities (from_logits=False) but the student outputs "
            "logits; "
            "loss must take logits, e.g. "
            "keras.losses.SparseCategoricalCrossentropy(from_logits=True), "
            f"received: loss={loss_text(loss)}"
        )


def loss_text(loss):
    """A loss as messages print it: a Keras loss instance as ``ClassName(from_logits=...)``."""
    if isinstance(loss, keras.losses.Loss):
        config = loss.get_config()
        logits = f"from_logits={config['from_logits']}" if "from_logits" in config else ""
        return f"{type(loss).__name__}({logits})"
    return repr(loss)


def check_augment(augment, alpha):
    if augment is None:
        return None
    if not isinstance(augment, keras.layers.Layer):
        raise TypeError(
            "augment must be a Keras layer (e.g. keras_kd.data.MixUp()), received: "
            f"augment={augment!r}"
        )
    if getattr(augment, "mixes_examples", False) and alpha > 0:
        raise ValueError(
            f"augment={augment.name!r} mixes examples, so the labels no longer match the inputs; "
            "use "
            f"alpha=0 with it (function matching), received: augment={augment.name!r}, "
            f"alpha={alpha}"
        )
    return augment


def check_pairs(losses, teachers, student):
    """Every layer a feature loss pairs exists in its (graph) model, before any tap is built."""
    for loss in losses:
        pairs = (loss.pairs if isinstance(loss, FeatureLoss) else None) or []
        for side, model in ((0, teachers[0]), (1, student)):
            if len(teachers) > 1 or not is_graph_model(model):
                continue  # several teachers take no pairs; subclassed models list their own taps
            known = [layer.name for layer in model.layers]
            for pair in pairs:
                if pair[side] not in known:
                    role = "student" if side else "teacher"
                    raise ValueError(
                        f"pairs of loss {loss.name!r} must name layers of the {role} model "
                        f"{model.name!r}, which has no layer named {pair[side]!r}; its layers are "
                        f"{known}, received: pairs={[tuple(p) for p in pairs]!r}"
                    )


def prepare_losses(losses, teacher_tap, student_tap, teacher, student):
    """Lets each loss check shapes and create its weights (adapters) before training starts."""
    t_shapes, s_shapes = teacher_tap.feature_shapes(), student_tap.feature_shapes()
    for loss in losses:
        if not isinstance(loss, FeatureLoss):
            continue  # logit losses own no weights
        try:
            shapes = [
                loss.pick_features(output_shape(teacher), t_shapes, 0),
                loss.pick_features(output_shape(student), s_shapes, 1),
            ]
        except KeyError:
            continue  # a subclassed model: shapes are known at the first call
        if None not in shapes[0] + shapes[1]:
            loss.build(*shapes)
