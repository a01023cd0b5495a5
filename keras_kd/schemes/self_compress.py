"""Self-distillation into a compressed copy: a float model teaches its own compressed self."""

from keras_kd._compat import keras
from keras_kd.schemes import _training


def self_compress(model, compress_fn, train, validation_data=None, **options):
    """Distills a trained float ``model`` into its own compressed copy ``compress_fn(model)``.

    ``compress_fn`` is any callable that returns a new Keras model with its own weights, e.g. a
    pruned, quantization-aware, clustered or slimmed copy (``keras_kd.compress`` provides such
    functions). The float model is the frozen teacher of a ``keras_kd.Distiller`` (its measured
    default losses and ``alpha``, or the ``losses`` and ``alpha`` given), so the copy recovers the
    accuracy lost to compression from the model's own soft targets as well as from the labels.
    Training callbacks the compressed copy needs (pruning steps) are the Distiller's to add.

    Paper: Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network", applied
    with the float model as teacher of its compressed self as in Polino, Pascanu & Alistarh (2018),
    "Model compression via distillation and quantization".

    Args:
        model: The trained float model (logits out), the teacher; never updated.
        compress_fn: ``compress_fn(model) -> keras.Model``, a new model that shares no variables
            with ``model`` and outputs logits over the same classes.
        train: A ``tf.data.Dataset`` of ``(x, y)`` batches or an ``(x, y)`` tuple of arrays.
        validation_data: ``None`` or data in the same forms, evaluated after each epoch.
        **options: The training options every scheme shares (``keras_kd.schemes``): ``epochs``,
            ``batch_size``, ``optimizer``, ``loss``, ``losses``, ``alpha``, ``callbacks``,
            ``verbose``.

    Returns:
        A ``SchemeResult``: ``models == [compressed]``, the trained copy (still wrapped, e.g. in
        pruning wrappers; strip them before export as the compression tool requires), with its
        history.

    Raises:
        ValueError: If ``compress_fn`` is not callable, returns ``model`` itself, a non-model, a
            model sharing variables with ``model`` or with other output shapes, or another
            argument is malformed; always before training.
        TypeError: If ``model`` is not a Keras model, or an option is unknown.

    Example:
        >>> result = self_compress(model, lambda m: keras_kd.compress.prune(m, sparsity=0.8),
        ...     (x_train, y_train), epochs=3)
        >>> small = keras_kd.compress.strip(result.student)
    """
    run = _training.settings("self_compress", train, validation_data, **options)
    if not callable(compress_fn):
        raise ValueError(
            "compress_fn must be a callable returning a compressed keras.Model, received: "
            f"compress_fn={compress_fn!r}"
        )
    _training.check_models("model", [("model", model)])
    compressed = compress_fn(model)
    if compressed is model:
        raise ValueError("compress_fn returned model itself; it must return a new, compressed copy")
    if not isinstance(compressed, keras.Model):
        raise ValueError(f"compress_fn must return a keras.Model, but returned {compressed!r}")
    _training.check_models("model", [("model", model), ("compress_fn(model)", compressed)])
    float_variables = {id(v) for v in model.variables}
    shared = [v.name for v in compressed.variables if id(v) in float_variables]
    if shared:
        raise ValueError(
            f"compress_fn(model) shares variables {shared[:5]} with model; training the copy would "
            "change the teacher. Return a copy with its own weights (e.g. keras.models.clone_model "
            "+ set_weights)"
        )
    return _training.SchemeResult([compressed], [run.distill(model, compressed)])
