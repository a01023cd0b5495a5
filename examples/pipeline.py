r"""One pipeline from teacher to device: distill, compress, export, verify, report, choose.

    python -m examples.pipeline                                  # digits, int8, about 2-3 min
    python -m examples.pipeline --flagfile=examples/configs/watch.cfg
    python -m examples.pipeline --pipeline_methods=kd,at --pipeline_compression=prune,prune+qat \
        --max_bytes=20000 --tensorboard_dir=/tmp/kd_logs

Stages (each writes its artifacts to ``--output_dir`` and is skipped on rerun when up to date;
see ``examples/pipeline_stages.py``): data -> teacher (trained, or ``--model``) -> scratch student
(reference) -> one distilled student per ``--pipeline_methods`` and ``--pipeline_schemes`` ->
each ``--pipeline_compression`` recipe (``+``-joined ``examples/compress_recipes.py`` methods)
on each distilled student, fine-tuned by distillation -> strip -> export for
``--pipeline_target`` -> verify every .tflite in LiteRT -> report.

The report (``report.md``, ``report.html`` with its PNGs, ``report.json``) tables every candidate
(LiteRT accuracy on the test split, agreement with its Keras model, bytes, gzip bytes, latency of
one example on one thread, parameters, sparsity) with the teacher and the scratch student as
references, plots accuracy against size and latency with the Pareto front, and the training
curves of every loss term. The chosen candidate is the most accurate one inside ``--max_bytes``,
``--max_latency_ms`` and ``--min_accuracy`` (0: no limit); the choice uses the same test split it
reports. When no candidate fits, the report says so, ``chosen`` is null and the exit status is 3
(a CI job fails). The last line of output is one JSON object.
"""

import json
import math
import os

import numpy as np
from absl import app, flags, logging

import keras_kd as kd
from examples import common_flags, compress_recipes, methods
from examples.models import make_student, make_teacher
from examples.pipeline_report import deploy, load_model, report_stage
from examples.pipeline_stages import StageRunner, file_hash, save_json, save_model
from keras_kd import compress, keras, report

common_flags.set_defaults(
    dataset="digits",
    train_size=0,
    epochs=30,
    teacher_epochs=20,
    teacher_width=32,
    student_width=16,
    batch_size=64,
    learning_rate=3e-3,
    temperature=4.0,
    alpha=0.1,
    seed=0,
    runs=50,
    output_dir="keras_kd_runs/pipeline",
    verbose="1",
)
NO_FIT_STATUS = 3
_SCHEMES = [s for s in methods.SCHEMES if s not in ("none", "multi_teacher")]

_PIPELINE_METHODS = flags.DEFINE_list(
    "pipeline_methods", ["kd", "at"], f"Distillation methods, from {list(methods.METHODS)}."
)
_PIPELINE_SCHEMES = flags.DEFINE_list(
    "pipeline_schemes", [], f"Training schemes giving more students, from {_SCHEMES}."
)
_PIPELINE_COMPRESSION = flags.DEFINE_list(
    "pipeline_compression",
    ["prune", "qat"],
    "Compression recipes applied to each distilled student; a recipe joins methods of "
    f"{list(compress_recipes.METHODS)} with '+', e.g. prune+qat.",
)
_PIPELINE_TARGET = flags.DEFINE_enum(
    "pipeline_target", "int8", list(kd.export.TARGETS), "Export target of every candidate."
)
_PIPELINE_FINETUNE_EPOCHS = flags.DEFINE_integer(
    "pipeline_finetune_epochs", 10, "Epochs after each compression step.", lower_bound=1
)
_PIPELINE_SPARSITY = flags.DEFINE_float(
    "pipeline_sparsity", 0.8, "Target sparsity of prune.", lower_bound=0.0, upper_bound=0.99
)
_PIPELINE_CLUSTERS = flags.DEFINE_integer(
    "pipeline_clusters", 16, "Clusters per kernel of cluster.", lower_bound=2
)
_MAX_BYTES = flags.DEFINE_integer(
    "max_bytes", 0, "Budget: largest .tflite file in bytes (0: no limit).", lower_bound=0
)
_MAX_LATENCY_MS = flags.DEFINE_float(
    "max_latency_ms", 0.0, "Budget: largest latency per example in ms (0: none).", lower_bound=0.0
)
_MIN_ACCURACY = flags.DEFINE_float(
    "min_accuracy", 0.0, "Budget: lowest accuracy (0: no limit).", lower_bound=0.0, upper_bound=1.0
)
_TENSORBOARD_DIR = flags.DEFINE_string(
    "tensorboard_dir", None, "Write TensorBoard logs (every loss term, sparsity, final metrics)."
)
_PIPELINE_FORCE = flags.DEFINE_bool("pipeline_force", False, "Run every stage, even up-to-date.")


def parse_recipe(text):
    """``"prune+qat"`` -> ``["prune", "qat"]``; raises ValueError for an invalid recipe."""
    parts = [p.strip() for p in text.split("+")]
    if not compress_recipes.valid_methods(parts):
        raise ValueError(
            f"a compression recipe joins distinct methods of {list(compress_recipes.METHODS)} "
            f"with '+', received: {text!r}"
        )
    return parts


def _recipes_ok(items):
    try:
        return len(set(items)) == len(items) and all(parse_recipe(i) for i in items)
    except ValueError:
        return False


flags.register_validator(
    "tensorboard_dir",
    lambda path: path is None or (bool(path) and not os.path.isfile(path)),
    message="--tensorboard_dir must be a directory path (not an existing file)",
)
flags.register_validator(
    "pipeline_methods",
    lambda v: bool(v) and len(set(v)) == len(v) and set(v) <= set(methods.METHODS),
    message=f"--pipeline_methods must be distinct names from {list(methods.METHODS)}",
)
flags.register_validator(
    "pipeline_schemes",
    lambda v: len(set(v)) == len(v) and set(v) <= set(_SCHEMES),
    message=f"--pipeline_schemes must be distinct names from {_SCHEMES}",
)
flags.register_validator(
    "pipeline_compression",
    _recipes_ok,
    message="--pipeline_compression must be distinct recipes such as prune,cluster,prune+qat "
    f"of {list(compress_recipes.METHODS)}",
)


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _callbacks(tensorboard_dir, name):
    if not tensorboard_dir:
        return []
    return [report.tensorboard_callback(os.path.join(tensorboard_dir, name.replace("+", "_")))]


def _accuracy(model, x, y):
    logits = model.predict(x, batch_size=512, verbose=0)
    return float(np.mean(logits.argmax(axis=1) == y))


def run(
    dataset="digits",
    train_size=0,
    model=None,
    teacher_epochs=20,
    teacher_width=32,
    epochs=30,
    student_width=16,
    batch_size=64,
    learning_rate=3e-3,
    temperature=4.0,
    alpha=0.1,
    seed=0,
    pipeline_methods=("kd", "at"),
    pipeline_schemes=(),
    compression=("prune", "qat"),
    finetune_epochs=10,
    sparsity=0.8,
    clusters=16,
    target="int8",
    max_bytes=0,
    max_latency_ms=0.0,
    min_accuracy=0.0,
    runs=50,
    output_dir="keras_kd_runs/pipeline",
    verbose=0,
    tensorboard_dir=None,
    force=False,
):
    """Runs every stage (skipping up-to-date ones); returns the result dict (see module doc)."""
    recipes = {r: parse_recipe(r) for r in compression}
    runner = StageRunner(output_dir, force=force)
    train_args = dict(epochs=epochs, batch_size=batch_size, verbose=verbose)

    def data():
        (x, y), (x_test, y_test) = kd.data.load(dataset)
        if train_size:
            x, y = x[:train_size], y[:train_size]
        path, temp = runner.path("data.npz"), runner.path(f".tmp{os.getpid()}-data.npz")
        np.savez(temp, x=x, y=y, x_test=x_test, y_test=y_test)
        os.replace(temp, path)
        return {"train": len(x), "test": len(x_test), "shape": list(x.shape[1:])}

    runner.run("data", {"dataset": dataset, "train_size": train_size}, ["data.npz"], data)
    with np.load(runner.path("data.npz")) as arrays:
        x, y, x_test, y_test = (arrays[k] for k in ("x", "y", "x_test", "y_test"))
    classes = int(max(y.max(), y_test.max())) + 1
    models = {}  # name -> in-memory Keras model, filled lazily

    def model_of(name, path):
        if name not in models:
            models[name] = load_model(path)
        return models[name]

    def teacher_stage():
        if model:
            teacher = keras.models.load_model(model, compile=False)
        else:
            keras.utils.set_random_seed(seed)
            teacher = make_teacher(x.shape[1:], classes, width=teacher_width)
            teacher.compile(keras.optimizers.Adam(learning_rate), _loss(), metrics=["accuracy"])
            teacher.fit(
                x,
                y,
                epochs=teacher_epochs,
                callbacks=_callbacks(tensorboard_dir, "teacher"),
                batch_size=batch_size,
                verbose=verbose,
            )
        models["teacher"] = teacher
        save_model(teacher, runner.path("models/teacher.keras"))
        return {"keras_accuracy": _accuracy(teacher, x_test, y_test)}

    teacher_settings = {"data": runner.fingerprint("data"), "seed": seed, "batch": batch_size}
    if model:
        teacher_settings["model"] = file_hash(model)
    else:
        teacher_settings.update(epochs=teacher_epochs, width=teacher_width, lr=learning_rate)
    runner.run("teacher", teacher_settings, ["models/teacher.keras"], teacher_stage)
    teacher_path = runner.path("models/teacher.keras")
    student_settings = {
        "data": runner.fingerprint("data"),
        "seed": seed,
        "width": student_width,
        "lr": learning_rate,
        **train_args,
    }
    student_settings.pop("verbose")

    def initial_student():
        keras.utils.set_random_seed(seed + 1)
        return make_student(x.shape[1:], classes, width=student_width)

    def scratch_stage():
        student = initial_student()
        student.compile(keras.optimizers.Adam(learning_rate), _loss(), metrics=["accuracy"])
        keras.utils.set_random_seed(seed + 2)
        history = student.fit(x, y, callbacks=_callbacks(tensorboard_dir, "scratch"), **train_args)
        models["scratch"] = student
        save_model(student, runner.path("models/scratch.h5"))
        save_json(history.history, runner.path("histories/scratch.json"))
        return {"keras_accuracy": _accuracy(student, x_test, y_test)}

    artifacts = ["models/scratch.h5", "histories/scratch.json"]
    runner.run("scratch", student_settings, artifacts, scratch_stage)
    distilled = [*pipeline_methods, *pipeline_schemes]
    teacher_print = runner.fingerprint("teacher")
    for name in distilled:

        def distill_stage(name=name):
            teacher = model_of("teacher", teacher_path)
            student = initial_student()
            keras.utils.set_random_seed(seed + 2)
            history = {}
            if name in methods.METHODS:
                distiller = kd.Distiller(
                    student, teacher, **methods.make_losses(name, temperature, alpha)
                )
                distiller.compile(
                    keras.optimizers.Adam(learning_rate), _loss(), metrics=["accuracy"]
                )
                fitted = distiller.fit(
                    x, y, callbacks=_callbacks(tensorboard_dir, name), **train_args
                )
                history = fitted.history
            else:
                student = methods.train_with_scheme(
                    name,
                    teacher,
                    student,
                    (x, y),
                    epochs,
                    batch_size,
                    learning_rate,
                    temperature,
                    alpha,
                )
            models[name] = student
            save_model(student, runner.path(f"models/{name}.h5"))
            save_json(history, runner.path(f"histories/{name}.json"))
            return {"keras_accuracy": _accuracy(student, x_test, y_test)}

        settings = {**student_settings, "teacher": teacher_print, "method": name}
        settings.update(temperature=temperature, alpha=alpha)
        runner.run(
            f"distill/{name}",
            settings,
            [f"models/{name}.h5", f"histories/{name}.json"],
            distill_stage,
        )
    compressed = []
    for base in distilled:
        for recipe, parts in recipes.items():
            name = f"{base}+{recipe}"
            compressed.append(name)

            def compress_stage(name=name, base=base, parts=parts):
                histories = []
                train_fn = compress_recipes.make_train_fn(
                    model_of("teacher", teacher_path),
                    x,
                    y,
                    finetune_epochs,
                    batch_size,
                    learning_rate,
                    temperature,
                    alpha,
                    True,
                    verbose,
                    callbacks=lambda _: _callbacks(tensorboard_dir, f"{name}_{len(histories)}"),
                    histories=histories,
                )
                steps = finetune_epochs * math.ceil(len(x) / batch_size)
                keras.utils.set_random_seed(seed + 3)
                start = compress.strip(model_of(base, runner.path(f"models/{base}.h5")))
                wrapped = compress_recipes.apply_methods(
                    start, parts, train_fn, steps, sparsity, clusters=clusters, strip_last=False
                )
                save_model(wrapped, runner.path(f"models/{name}.h5"))
                merged = {k: sum((h.get(k, []) for h in histories), []) for k in histories[-1]}
                save_json(merged, runner.path(f"histories/{name}.json"))
                return {"steps": parts}

            settings = {
                "base": runner.fingerprint(f"distill/{base}"),
                "teacher": teacher_print,
                "recipe": parts,
                "finetune_epochs": finetune_epochs,
                "sparsity": sparsity,
                "clusters": clusters,
                "seed": seed,
                "temperature": temperature,
                "alpha": alpha,
                "lr": learning_rate,
                "batch": batch_size,
            }
            runner.run(
                f"compress/{name}",
                settings,
                [f"models/{name}.h5", f"histories/{name}.json"],
                compress_stage,
            )
    rows = {}
    for name in ["teacher", "scratch", *distilled, *compressed]:
        source = teacher_path if name == "teacher" else runner.path(f"models/{name}.h5")
        upstream = {"teacher": "teacher", "scratch": "scratch"}.get(
            name, f"distill/{name}" if name in distilled else f"compress/{name}"
        )
        rows[name] = deploy(runner, name, source, upstream, target, x, x_test, y_test, runs)
    return report_stage(
        runner,
        rows,
        distilled,
        compressed,
        target,
        dataset,
        max_bytes,
        max_latency_ms,
        min_accuracy,
        tensorboard_dir,
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    result = run(
        dataset=common_flags.DATASET.value,
        train_size=common_flags.TRAIN_SIZE.value,
        model=common_flags.MODEL.value,
        teacher_epochs=common_flags.TEACHER_EPOCHS.value,
        teacher_width=common_flags.TEACHER_WIDTH.value,
        epochs=common_flags.EPOCHS.value,
        student_width=common_flags.STUDENT_WIDTH.value,
        batch_size=common_flags.BATCH_SIZE.value,
        learning_rate=common_flags.LEARNING_RATE.value,
        temperature=common_flags.TEMPERATURE.value,
        alpha=common_flags.ALPHA.value,
        seed=common_flags.SEED.value,
        pipeline_methods=_PIPELINE_METHODS.value,
        pipeline_schemes=_PIPELINE_SCHEMES.value,
        compression=_PIPELINE_COMPRESSION.value,
        finetune_epochs=_PIPELINE_FINETUNE_EPOCHS.value,
        sparsity=_PIPELINE_SPARSITY.value,
        clusters=_PIPELINE_CLUSTERS.value,
        target=_PIPELINE_TARGET.value,
        max_bytes=_MAX_BYTES.value,
        max_latency_ms=_MAX_LATENCY_MS.value,
        min_accuracy=_MIN_ACCURACY.value,
        runs=common_flags.RUNS.value,
        output_dir=common_flags.OUTPUT_DIR.value,
        verbose=int(common_flags.VERBOSE.value),
        tensorboard_dir=_TENSORBOARD_DIR.value,
        force=_PIPELINE_FORCE.value,
    )
    statuses = list(result["stages"].values())
    logging.info("stages: %s", result["stages"])
    print(f"stages: {statuses.count('ran')} ran, {statuses.count('skipped')} skipped (up to date)")
    if result["chosen"]:
        print(f"chosen candidate: {result['chosen']}")
    else:
        print("no candidate fits the budget (see the report); exit status 3")
    print(f"report: {result['report_html']}")
    print(json.dumps(result))
    return 0 if result["chosen"] else NO_FIT_STATUS


if __name__ == "__main__":
    common_flags.run_app(main)
