"""Argument checks of the Distiller, raised before training with the argument and value named."""

import math
import numbers

from keras_kd._compat import keras, tf
from keras_kd.losses import FeatureLoss, LogitLoss
from keras_kd.teachers import foreign, resolve


def check_model(role, model):
    if model is None:
        raise ValueError(f"{role} is required, received: {role}=None")
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"{role} must be a keras.Model (from keras_kd import keras), received: {role}={model!r}"
        )
    if not model.built:
        raise ValueError(
            f"{role} model {model.name!r} is not built; {role} must be a built model (give it an "
            "Input "
            f"layer or input_shape, or call {role}.build(input_shape) first), received: "
            f"{role}={model.name!r} with no input shape"
        )
    last = model.layers[-1] if getattr(model, "_is_graph_network", False) and model.layers else None
    if (
        isinstance(last, keras.layers.Softmax)
        or getattr(last, "activation", None) is keras.activations.softmax
    ):
        raise ValueError(
            f"{role} model {model.name!r} ends in a softmax (layer {last.name!r}); {role} must "
            "output "
            f"logits, so remove the final softmax activation, received: {role}={model.name!r}"
        )


def output_shape(model):
    if isinstance(model, foreign.ForeignTeacher):
        return model.output_shape
    if getattr(model, "_is_graph_network", False):
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


def check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number in [0, 1], received: alpha={alpha!r}")
    return float(alpha)


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
            check_model(role, model)
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
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(
                f"loss_weights must be finite numbers >= 0, received: loss_weights={loss_weights!r}"
            )
    return [float(w) for w in weights]


def check_optimizer(optimizer):
    """An optimizer name must be one Keras knows; instances and configs are left to Keras."""
    if isinstance(optimizer, str):
        try:
            keras.optimizers.get(optimizer)
        except ValueError:
            raise ValueError(
                "optimizer must be a keras.optimizers.Optimizer or a Keras optimizer name (e.g. "
                f"'adam', 'sgd'), received: optimizer={optimizer!r}"
            ) from None


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
        try:
            keras.losses.get(loss)
        except ValueError:
            raise ValueError(
                "loss must be a Keras loss name (e.g. 'sparse_categorical_crossentropy' with "
                f"from_logits, better an instance), a keras.losses.Loss or a callable, received: "
                f"loss={loss!r}"
            ) from None
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
    """Every layer name a feature loss pairs exists in its (graph) model, before any tap is "
    "built."""
    for loss in losses:
        pairs = (loss.pairs if isinstance(loss, FeatureLoss) else None) or []
        for side, model in ((0, teachers[0]), (1, student)):
            if len(teachers) > 1 or not getattr(model, "_is_graph_network", False):
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


def check_positive(name, value):
    """Returns ``float(value)``; raises unless it is a finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a finite number > 0, received: {name}={value!r}")
    return float(value)


def check_positive_int(name, value):
    """Returns ``int(value)``; raises unless it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, received: {name}={value!r}")
    return int(value)


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
