"""The compile contract shared by students that bring their own loss and metrics."""

from keras_kd._compat import keras
from keras_kd.recipes import hard_loss
from keras_kd.training_step import TrainingStep


class SelfTrainingModel(TrainingStep):
    """A ``TrainingStep`` whose loss and metrics are built in, so ``compile`` takes only the
    optimizer (and options such as ``jit_compile``); the hard-label loss is
    ``keras_kd.recipes.hard_loss()``. Subclasses set ``compile_refusal``: why ``loss`` and
    ``metrics`` cannot be set, for the error message."""

    compile_refusal = "builds its own loss and metrics"

    def compile(self, optimizer="rmsprop", **kwargs):
        """Configures training; the loss and the metrics are built in.

        Args:
            optimizer: A Keras optimizer or its name.
            **kwargs: Passed to ``keras.Model.compile`` (``jit_compile``, ``run_eagerly``, ...);
                ``loss`` and ``metrics`` are not accepted.

        Raises:
            ValueError: If ``loss`` or ``metrics`` is given.
        """
        for name in ("loss", "metrics"):
            if kwargs.get(name) is not None:
                raise ValueError(
                    f"{type(self).__name__} {self.compile_refusal}; {name} cannot be set, "
                    f"received: {name}={kwargs[name]!r}"
                )
        kwargs.pop("loss", None)
        super().compile(optimizer=optimizer, loss=hard_loss(), **kwargs)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None:
            config.pop("loss", None)  # built in: compile refuses it
        return config

    def compile_from_config(self, config):
        """Recompiles from ``get_compile_config()`` when a saved model is loaded."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        self.optimizer.build(self.trainable_variables)
