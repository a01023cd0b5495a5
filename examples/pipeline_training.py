"""The training stages of examples/pipeline.py: data, teacher, scratch, distilled, compressed.

Each is a ``examples.pipeline_stages.StageRunner`` stage, skipped on rerun when up to date.
"""

import math
import os

import numpy as np

import keras_kd as kd
from examples import compress_recipes, methods
from examples.models import STUDENTS, train_teacher
from examples.pipeline_stages import file_hash, save_json
from keras_kd import compress, keras, report


def _accuracy(model, x, y):
    logits = model.predict(x, batch_size=512, verbose=0)
    return float(np.mean(logits.argmax(axis=1) == y))


def _keras_figure(info):
    figure = f"Keras accuracy {info['keras_accuracy']:.4f}"
    if info.get("sparsity"):
        figure += f", sparsity {info['sparsity']:.2f}"
    return figure


class TrainingStages:
    """The training stages of examples/pipeline.py, in the order ``run`` calls them.

    ``data`` loads the arrays (``self.arrays``), then ``teacher``, ``scratch``, ``distill`` per
    method or scheme and ``compress`` per recipe; each is a ``StageRunner`` stage writing
    ``models/<name>`` and ``histories/<name>.json``. The scratch and distilled students start from
    the same initial weights (seed + 1) and train with the same optimizer and data order
    (seed + 2). Distilled students get the logit term ``logit_loss`` at ``temperature`` (``None``:
    for DIST the Distiller's default for the labels per class, else 4) and ``alpha`` on the labels
    (``methods.make_losses`` with that logit term); compressed students are fine-tuned by the same logit term (``keras_kd.compress.apply_recipe``: pruning
    keeps the first and last layers dense, QAT starts from calibrated activation ranges).

    Args:
        runner: The ``StageRunner``.
        seed: Base random seed.
        batch_size: Batch size of every fit.
        verbose: Keras ``fit`` verbosity (0, 1 or 2).
        tensorboard_dir: TensorBoard log directory, or ``None``.
        logit_loss: One of ``LOGIT_LOSSES``.
        temperature: Temperature of the logit term.
        alpha: Weight of the hard-label loss.
        student: The students' architecture, a key of ``examples.models.STUDENTS``.
        student_schedule: The learning rate of the scratch and distilled students and of each
            fine-tuning step, one of ``keras_kd.recipes.SCHEDULES``: ``"constant"`` or
            ``"cosine"`` (decay to 0 over the run or step; Loshchilov & Hutter 2017).

    Raises:
        ValueError: If ``student``, ``logit_loss`` or ``student_schedule`` is not a known name.
    """

    LOGIT_LOSSES = ("dist", "kd", "kd_standardized")

    def __init__(
        self,
        runner,
        seed,
        batch_size,
        verbose,
        tensorboard_dir,
        logit_loss,
        temperature,
        alpha,
        student="gap_cnn",
        student_schedule="constant",
    ):
        if student_schedule not in kd.recipes.SCHEDULES:
            raise ValueError(
                f"student_schedule must be one of {list(kd.recipes.SCHEDULES)}, received: "
                f"student_schedule={student_schedule!r}"
            )
        self.student_schedule = student_schedule
        if student not in STUDENTS:
            raise ValueError(
                f"student must be one of {list(STUDENTS)}, received: student={student!r}"
            )
        self.student = student
        if logit_loss not in self.LOGIT_LOSSES:
            raise ValueError(
                f"logit_loss must be one of {list(self.LOGIT_LOSSES)}, received: "
                f"logit_loss={logit_loss!r}"
            )
        self.runner, self.seed, self.batch_size, self.verbose = runner, seed, batch_size, verbose
        self.tensorboard_dir = tensorboard_dir
        self.logit_loss, self.temperature, self.alpha = logit_loss, temperature, alpha
        self._default_dist = None  # DIST's beta, gamma, temperature when chosen by the rule
        self.models = {}  # name -> in-memory Keras model, filled lazily
        self.facts = []
        self.distilled = set()

    def _fit_args(self, name, epochs):
        callbacks = []
        if self.tensorboard_dir:
            log_dir = os.path.join(self.tensorboard_dir, name.replace("+", "_"))
            callbacks.append(report.tensorboard_callback(log_dir))
        return dict(
            epochs=epochs, batch_size=self.batch_size, verbose=self.verbose, callbacks=callbacks
        )

    def model_source(self, name):
        """``(path, upstream stage)`` of a trained model by its candidate name."""
        if name == "teacher":
            return self.runner.path("models/teacher.keras"), "teacher"
        if name == "scratch":
            stage = "scratch"
        else:
            stage = f"distill/{name}" if name in self.distilled else f"compress/{name}"
        return self.runner.path(f"models/{name}.h5"), stage

    def model(self, name):
        """The trained model ``name``, from memory or from its file."""
        if name not in self.models:
            self.models[name] = kd.load_model(self.model_source(name)[0])
        return self.models[name]

    def logit_term(self):
        """A fresh logit loss layer: DIST, Hinton KD or standardized KD at ``temperature``.

        DIST without a ``temperature`` is the Distiller's default for the training labels per
        class (``keras_kd.losses.defaults``), resolved by ``data``.
        """
        if self.logit_loss == "dist":
            if self._default_dist is not None:
                return kd.losses.DIST(**self._default_dist)
            return kd.losses.get("dist", temperature=self.temperature)
        return kd.losses.LogitsKD(
            self.temperature, standardize=self.logit_loss == "kd_standardized"
        )

    def data(self, dataset, train_size):
        """Loads (and caches in ``data.npz``) the dataset; sets ``self.arrays``."""
        runner = self.runner

        def build():
            (x, y), (x_test, y_test) = kd.data.load(dataset)
            if train_size:
                x, y = x[:train_size], y[:train_size]
            with kd.loading.atomic_path(runner.path("data.npz")) as temp:
                np.savez(temp, x=x, y=y, x_test=x_test, y_test=y_test)
            return {"train": len(x), "test": len(x_test), "shape": list(x.shape[1:])}

        def figure(info):
            shape = "x".join(map(str, info["shape"]))
            return f"{info['train']:,} train, {info['test']:,} test, {shape}"

        settings = {"dataset": dataset, "train_size": train_size}
        runner.run("data", settings, ["data.npz"], build, figure)
        with np.load(runner.path("data.npz")) as arrays:
            self.arrays = tuple(arrays[k] for k in ("x", "y", "x_test", "y_test"))
        self.classes = int(max(self.arrays[1].max(), self.arrays[3].max())) + 1
        if self.temperature is None:  # the Distiller's rule, for these labels per class
            (loss,), _ = kd.losses.defaults(examples_per_class=len(self.arrays[1]) / self.classes)
            if self.logit_loss == "dist":
                self._default_dist = {k: getattr(loss, k) for k in ("beta", "gamma", "temperature")}
            self.temperature = loss.temperature if self._default_dist else 4.0

    def teacher(self, model, epochs, width, learning_rate, unsafe=False, **architecture):
        """Trains the teacher (or loads ``model`` with ``kd.load_model(model, unsafe=unsafe)``).

        ``architecture`` holds ``examples.models.train_teacher``'s ``augment``, ``batch_norm``
        and ``convs_per_block``. A killed training resumes from its last epoch on the next run
        (``keras_kd.resilience.BackupAndRestore``, in a directory named by the stage's key).
        """
        x, y, x_test, y_test = self.arrays
        architecture = dict(
            dict(augment=False, batch_norm=False, convs_per_block=1), **architecture
        )

        def build():
            if model:
                teacher = kd.load_model(model, unsafe=unsafe)
            else:
                backup_dir = self.runner.path(f"backup/teacher-{self.runner.key(settings)[:16]}")
                callbacks = self._fit_args("teacher", epochs)["callbacks"]
                callbacks.append(kd.resilience.BackupAndRestore(backup_dir))
                teacher = train_teacher(
                    x, y, epochs, width, self.batch_size, learning_rate, self.verbose, self.seed,
                    self.classes, callbacks=callbacks, **architecture,
                )  # fmt: skip
            self.models["teacher"] = teacher
            kd.resilience.save_model_atomically(teacher, self.runner.path("models/teacher.keras"))
            return {"keras_accuracy": _accuracy(teacher, x_test, y_test)}

        settings = {"data": self.runner.fingerprint("data"), "seed": self.seed}
        settings["batch"] = self.batch_size
        if model:
            settings["model"] = file_hash(model)
            self.facts.append(("teacher", f"loaded from {model}"))
        else:
            settings.update(epochs=epochs, width=width, lr=learning_rate)
            fact = f"{epochs} epochs, width {width}"
            # Each only in the key when set: earlier runs stay up to date.
            if architecture["augment"] or architecture["batch_norm"]:
                settings.update(
                    augment=architecture["augment"], batch_norm=architecture["batch_norm"]
                )
            convs = architecture["convs_per_block"]
            if convs > 1:
                settings["convs_per_block"] = convs
                fact += f", {convs} convolutions per block"
            fact += ", batch norm" * architecture["batch_norm"]
            fact += ", shifts and flips, cosine decay" * architecture["augment"]
            self.facts.append(("teacher", fact))
        self.runner.run("teacher", settings, ["models/teacher.keras"], build, _keras_figure)

    def _student_settings(self, epochs, width, learning_rate):
        data = self.runner.fingerprint("data")
        settings = {"data": data, "seed": self.seed, "width": width, "lr": learning_rate,
                    "epochs": epochs, "batch_size": self.batch_size}  # fmt: skip
        if self.student != "gap_cnn":  # only then in the key: earlier runs stay up to date
            settings["student"] = self.student
        if self.student_schedule != "constant":  # the same
            settings["schedule"] = self.student_schedule
        return settings

    def _initial_student(self, width):
        keras.utils.set_random_seed(self.seed + 1)
        return STUDENTS[self.student](self.arrays[0].shape[1:], self.classes, width=width)

    def _optimizer(self, epochs, learning_rate):
        """The scratch and distilled students' Adam, at ``student_schedule``."""
        total = kd.recipes.steps(len(self.arrays[0]), epochs, self.batch_size)
        return kd.recipes.scheduled_adam(learning_rate, total, self.student_schedule)

    def _save(self, name, model, history):
        self.models[name] = model
        kd.resilience.save_model_atomically(model, self.runner.path(f"models/{name}.h5"))
        save_json(history, self.runner.path(f"histories/{name}.json"))
        return {"keras_accuracy": _accuracy(model, *self.arrays[2:])}

    def scratch(self, epochs, width, learning_rate):
        """Trains the scratch student: the same initial weights and schedule, labels only."""
        x, y = self.arrays[:2]
        self.facts.append(
            ("students", f"{epochs} epochs, Adam {learning_rate:g}"
             + " with cosine decay" * (self.student_schedule == "cosine")
             + f", batch {self.batch_size}, "
             f"{self.student} width {width}, seed {self.seed}")
        )  # fmt: skip

        def build():
            student = self._initial_student(width)
            student.compile(
                self._optimizer(epochs, learning_rate), kd.recipes.hard_loss(), metrics=["accuracy"]
            )
            keras.utils.set_random_seed(self.seed + 2)
            history = student.fit(x, y, **self._fit_args("scratch", epochs))
            return self._save("scratch", student, history.history)

        settings = self._student_settings(epochs, width, learning_rate)
        artifacts = ["models/scratch.h5", "histories/scratch.json"]
        self.runner.run("scratch", settings, artifacts, build, _keras_figure)

    def distill(self, name, epochs, width, learning_rate):
        """Distills one student by a method of ``methods.METHODS`` or a scheme."""
        x, y = self.arrays[:2]
        self.distilled.add(name)
        if not any(label == "distillation" for label, _ in self.facts):
            self.facts.append(
                ("distillation", f"{self.logit_loss} (T={self.temperature:g}"
                 + ", the Distiller's default for these labels" * (self._default_dist is not None)
                 + f"), alpha={self.alpha:g} on the labels")
            )  # fmt: skip

        def build():
            teacher = self.model("teacher")
            student = self._initial_student(width)
            keras.utils.set_random_seed(self.seed + 2)
            history = {}
            if name in methods.METHODS:
                arguments = methods.make_losses(
                    name, self.temperature, self.alpha, logit=self.logit_term
                )
                if name == "kd":  # Hinton's term becomes the pipeline's logit term
                    arguments["losses"] = [self.logit_term()]
                distiller = kd.Distiller(student, teacher, **arguments)
                distiller.compile(
                    self._optimizer(epochs, learning_rate), kd.recipes.hard_loss(), ["accuracy"]
                )
                history = distiller.fit(x, y, **self._fit_args(name, epochs)).history
            else:
                student = methods.train_with_scheme(
                    name, teacher, student, (x, y), epochs, self.batch_size, learning_rate,
                    self.temperature, self.alpha,
                )  # fmt: skip
            return self._save(name, student, history)

        settings = self._student_settings(epochs, width, learning_rate)
        settings.update(teacher=self.runner.fingerprint("teacher"), method=name)
        settings.update(loss=self.logit_loss, temperature=self.temperature, alpha=self.alpha)
        if self._default_dist is not None:  # only then in the key: earlier runs stay up to date
            settings["dist"] = self._default_dist
        artifacts = [f"models/{name}.h5", f"histories/{name}.json"]
        self.runner.run(f"distill/{name}", settings, artifacts, build, _keras_figure)

    def compress(
        self, base, recipe, parts, epochs, learning_rate, qat_learning_rate, sparsity, prune_end,
        clusters,
    ):  # fmt: skip
        """Compresses a distilled student by ``parts``, fine-tuned by distillation after each."""
        x, y = self.arrays[:2]
        name = f"{base}+{recipe}"
        fact = f"{epochs} epochs per step by distillation, Adam {learning_rate:g}"
        fact += " with cosine decay" * (self.student_schedule == "cosine")
        fact += f" ({qat_learning_rate:g} for QAT, its ranges calibrated first)"
        if "prune" in parts:
            fact += f"; prune to {sparsity:g} (not the first and last layers) by {prune_end:.0%}"
        if not any(label == "fine-tuning" for label, _ in self.facts):
            self.facts.append(("fine-tuning", fact))

        def build():
            histories = []
            train_fn = compress_recipes.make_train_fn(
                self.model("teacher"), x, y, epochs, self.batch_size, learning_rate,
                self.temperature, self.alpha, True, self.verbose,
                callbacks=lambda _: self._fit_args(f"{name}_{len(histories)}", 1)["callbacks"],
                histories=histories, distill_losses=lambda: [self.logit_term()],
                schedule=self.student_schedule,
            )  # fmt: skip
            steps = epochs * math.ceil(len(x) / self.batch_size)
            keras.utils.set_random_seed(self.seed + 3)
            start = compress.strip(self.model(base))
            wrapped = compress.apply_recipe(
                start, parts, train_fn, steps, sparsity, clusters=clusters,
                strip_last=False, prune_end=prune_end, keep_first_last=True,
                calibration_data=x, qat_learning_rate=qat_learning_rate,
            )  # fmt: skip
            merged = {k: sum((h.get(k, []) for h in histories), []) for k in histories[-1]}
            info = self._save(name, wrapped, merged)
            info["sparsity"] = round(compress.sparsity(compress.strip(wrapped))["total"], 4)
            return {**info, "steps": parts}

        settings = {
            "base": self.runner.fingerprint(f"distill/{base}"),
            "teacher": self.runner.fingerprint("teacher"),
            "recipe": parts, "epochs": epochs, "lr": learning_rate, "qat_lr": qat_learning_rate,
            "sparsity": sparsity, "calibrated": True, "keep_first_last": True,
            "prune_end": prune_end, "clusters": clusters, "seed": self.seed,
            "loss": self.logit_loss, "temperature": self.temperature, "alpha": self.alpha,
            "batch": self.batch_size,
        }  # fmt: skip
        if self.student_schedule != "constant":  # only then in the key, as for the students
            settings["schedule"] = self.student_schedule
        artifacts = [f"models/{name}.h5", f"histories/{name}.json"]
        self.runner.run(f"compress/{name}", settings, artifacts, build, _keras_figure)

    def describe(self):
        """The report's facts about training: ``[(label, text)]``."""
        return list(self.facts)
