r"""Does distillation beat the student trained alone? A fixed suite of regimes, three seeds each.

    python -m examples.benchmark_regimes                      # every regime (hours on 2 cores)
    python -m examples.benchmark_regimes --regimes=fashion_5k_30,digits_main_job

The suite was fixed before any tuning (issue 18) and is not to be edited to flatter a method:

- Fashion-MNIST (``--dataset``, default ``fashion_mnist``): 5,000 labeled images x 30 and x 150
  epochs, all 60,000 x 6 and x 40 epochs; two students in each: ``cnn`` (two stride-2
  convolutions, 96k MACs) and ``mlp`` (784-100-100-10, 89k MACs). One CNN teacher
  (``examples.models.make_teacher``, 15.7M MACs), trained once with shifts and flips and reused.
- MNIST-1D (Greydanus 2020; 4,000 train / 1,000 test): the MLP student, a 1-D CNN teacher.
- digits: the main job's pair (``make_teacher(width=32)``, ``make_student(width=16)``).
- Held out (``--regimes=holdout_...``): students and budgets the defaults were not chosen on, to
  check them: a global-pooling CNN of width 8 on 10,000 Fashion images x 20 epochs, on all 60,000
  x 10 epochs (the many-labels side of the default's rule) and on MNIST-1D, and a 32-unit MLP on
  digits; rows ``scratch``, ``default`` and ``hinton`` only.

Every row of a regime starts, for each seed, from the same initial student weights and trains the
same epochs with the same optimizer (Adam, cosine decay from 3e-3 to 0), and reports the last
epoch's test accuracy: no selection on the test set. Rows: ``scratch`` (labels only), ``default``
(``kd.Distiller(student, teacher)`` with no other argument, whose first fit picks DIST's
temperature from the labeled examples per class, ``kd.losses.defaults``; when another row has
exactly the losses and alpha it picks, that row's result is reused, marked ``same_as``: runs are
deterministic given the seed), ``hinton`` (the 2015 reference as in
mdistiller: T=4, hard weight 0.1, soft weight 0.9), ``kd_t2`` (T=2, 0.5 / 0.5), ``kd_std`` (the same
on standardized logits, Sun et al. 2024), ``dkd`` (Zhao et al. 2022), ``dist`` (Huang et al.
2022) with its ImageNet setting (T=1) and, as ``dist_t4``, its CIFAR one (T=4, beta=gamma=2); and
``dist_a01`` (DIST with hard weight 0.1 and DIST weight 0.9); ``dist_kd`` (DIST plus ``kd_t2``'s KL,
each weighted 0.5); the second sweep's ``dist_t2`` and ``dist_t8`` (beta=gamma=2 at T=2 and 8)
and ``dist_t4_a03`` (``dist_t4`` with hard weight 0.3); and ``patient``
(``kd.recipes.patient_distiller``, Beyer et al. 2022: shifts, flips and MixUp, the same view to
both models, KL at T=1, no label term) in the long regimes, with ``PATIENT_VIEWS`` replayed views
per image (Shen & Xing 2022) so the teacher runs once per view.

Results go to ``<output_dir>/<regime>.json`` after every run, so an interrupted run resumes where
it stopped; the table of every finished regime is written to ``<output_dir>/regimes.md``, printed,
and followed by one JSON line.
"""

import os
import sys

if not __package__:  # python examples/<name>.py: import the package as `python -m` does
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)

import json
import time

import numpy as np
from absl import flags

import keras_kd as kd
from examples import common_flags
from examples.models import make_mlp, make_small_cnn, make_student, make_teacher
from examples.regimes_table import ROW_ORDER, summarize
from keras_kd import keras, recipes
from keras_kd._compat import tf
from keras_kd.report import describe_machine
from keras_kd.students.macs import count_macs

FASHION = ("fashion_mnist", ("cnn", "mlp"), 128)
REGIMES = {
    "fashion_5k_30": (*FASHION, 5000, 30),
    "fashion_5k_150": (*FASHION, 5000, 150),
    "fashion_60k_6": (*FASHION, 0, 6),
    "fashion_60k_40": (*FASHION, 0, 40),
    "mnist1d_mlp": ("mnist1d", ("mlp",), 128, 0, 100),
    "digits_main_job": ("digits", ("main_job",), 64, 0, 30),
    # Held out: students and regimes the defaults were not chosen on (scratch, default, hinton).
    "holdout_fashion_gap_cnn": ("fashion_mnist", ("gap_cnn8",), 128, 10000, 20),
    "holdout_mnist1d_cnn": ("mnist1d", ("gap_cnn8",), 128, 0, 60),
    "holdout_digits_mlp": ("digits", ("mlp32",), 32, 0, 40),
    # Added with the labels-per-class rule of kd.losses.defaults: its many-labels side, held out.
    "holdout_fashion_60k_gap_cnn": ("fashion_mnist", ("gap_cnn8",), 128, 0, 10),
}
HOLDOUT_METHODS = ("scratch", "default", "hinton")
SUITE = tuple(name for name in REGIMES if not name.startswith("holdout_"))
LONG_REGIMES = ("fashion_5k_150", "fashion_60k_40")
PATIENT_VIEWS = 16  # replayed views per image of the patient row
METHODS = ROW_ORDER  # the table lists the rows in this order
TEACHER_EPOCHS = {"fashion_mnist": 15, "mnist1d": 100, "digits": 30}
LEARNING_RATE = 3e-3

FLAGS = flags.FlagValues()
flags.DEFINE_list("regimes", list(SUITE), "Regimes to run, in order.", flag_values=FLAGS)
flags.DEFINE_list(
    "regime_methods", list(METHODS), "Rows to run (scratch is always run).", flag_values=FLAGS
)
flags.DEFINE_list(
    "regime_students",
    [],
    "Run only these students of each regime (empty: all of them).",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "report_only",
    False,
    "Train nothing: print the table of the results already in --output_dir.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "threads",
    0,
    "TensorFlow intra-op threads (0: TensorFlow's choice, one per core).",
    lower_bound=0,
    flag_values=FLAGS,
)
common_flags.define(FLAGS, seeds=3, output_dir="keras_kd_runs/regimes", dataset="fashion_mnist")
flags.register_validator(
    "regimes",
    lambda names: bool(names) and set(names) <= set(REGIMES),
    message=f"--regimes must be names from {list(REGIMES)}",
    flag_values=FLAGS,
)
_KINDS = sorted({kind for regime in REGIMES.values() for kind in regime[1]})
flags.register_validator(
    "regime_students",
    lambda names: set(names) <= set(_KINDS),
    message=f"--regime_students must be names from {_KINDS}",
    flag_values=FLAGS,
)
flags.register_validator(
    "regime_methods",
    lambda names: bool(names) and set(names) <= set(METHODS),
    message=f"--regime_methods must be names from {list(METHODS)}",
    flag_values=FLAGS,
)


def _student(kind, input_shape, classes):
    if kind == "cnn":
        return make_small_cnn(input_shape, classes)
    if kind == "mlp":
        return make_mlp(input_shape, classes)
    if kind == "mlp32":
        return make_mlp(input_shape, classes, hidden=32)
    if kind == "gap_cnn8":
        return make_student(input_shape, classes, width=8)
    return make_student(input_shape, classes, width=16)


_L = kd.losses
# Each row's Distiller arguments: (losses factory, alpha), fixed with the suite before tuning.
ROWS = {
    "default": (None, None),
    "hinton": (lambda: [_L.LogitsKD(temperature=4.0)], 0.1),
    "kd_t2": (lambda: [_L.LogitsKD(temperature=2.0)], 0.5),
    "kd_std": (lambda: [_L.LogitsKD(temperature=2.0, standardize=True)], 0.5),
    "dkd": (lambda: [_L.DKD()], 0.5),
    "dist": (lambda: [_L.DIST()], 0.5),
    "dist_kd": (lambda: [_L.DIST(), _L.LogitsKD(temperature=2.0)], 0.5),
    "dist_t4": (lambda: [_L.DIST(beta=2.0, gamma=2.0, temperature=4.0)], 0.5),
    "dist_a01": (lambda: [_L.DIST()], 0.1),
    # Added after the first sweep, to look for a setting that wins everywhere (issue 18):
    "dist_t2": (lambda: [_L.DIST(beta=2.0, gamma=2.0, temperature=2.0)], 0.5),
    "dist_t8": (lambda: [_L.DIST(beta=2.0, gamma=2.0, temperature=8.0)], 0.5),
    "dist_t4_a03": (lambda: [_L.DIST(beta=2.0, gamma=2.0, temperature=4.0)], 0.3),
}


def _distiller_args(method):
    make_losses, alpha = ROWS[method]
    return {} if make_losses is None else {"losses": make_losses(), "alpha": alpha}


def load_teacher(dataset, x, y, output_dir, verbose):
    """Trains the regime's teacher once (with augmentation for images) and caches it as .keras."""
    path = os.path.join(output_dir, f"teacher_{dataset}.keras")
    if os.path.isfile(path):
        return keras.models.load_model(path)
    keras.utils.set_random_seed(0)
    classes = int(y.max()) + 1
    teacher = make_teacher(x.shape[1:], classes, width=32 if dataset == "digits" else 64)
    batch_size = 64 if dataset == "digits" else 128
    recipes.train_classifier(
        teacher,
        x,
        y,
        TEACHER_EPOCHS[dataset],
        batch_size,
        1e-3,
        augment=dataset == "fashion_mnist",
        verbose=verbose,
    )
    teacher.save(path)
    return teacher


def _configuration(method, examples_per_class):
    """A row's losses (class names and configs) and alpha; ``None`` for rows without a Distiller."""
    if method in ("scratch", "patient"):
        return None
    make_losses, alpha = ROWS[method]
    if make_losses is None:  # the Distiller's default, which its first fit picks from the labels
        losses, alpha = kd.losses.defaults(1, examples_per_class)
    else:
        losses = make_losses()
    configs = [
        (type(loss).__name__, {k: v for k, v in loss.get_config().items() if k != "name"})
        for loss in losses
    ]
    return configs, alpha


def _same_configuration(method, rows, examples_per_class):
    """The row that trains exactly as ``default`` does (same losses and alpha), if any."""
    if method != "default":
        return None
    mine = _configuration(method, examples_per_class)
    for other in rows:
        if other != method and _configuration(other, examples_per_class) == mine:
            return other
    return None


def train_row(method, initial, teacher, data, epochs, batch_size, seed, verbose):
    """Trains one row from ``initial``'s weights; returns the test accuracy after every epoch."""
    (x, y), test = data
    student = keras.models.clone_model(initial)
    student.set_weights(initial.get_weights())
    keras.utils.set_random_seed(seed + 2)
    if method == "scratch":
        history = recipes.train_classifier(
            student, x, y, epochs, batch_size, LEARNING_RATE, validation_data=test, verbose=verbose
        )
        return history.history["val_accuracy"]
    if method == "patient":
        model = recipes.patient_distiller(
            student,
            teacher,
            len(x),
            epochs,
            batch_size,
            LEARNING_RATE,
            replay_views=PATIENT_VIEWS,
            replay_seed=seed,
        )
        history = model.fit(
            x, epochs=epochs, batch_size=batch_size, validation_data=test, verbose=verbose
        )
        return history.history["val_accuracy"]
    model = kd.Distiller(student, teacher, **_distiller_args(method))
    total = recipes.steps(len(x), epochs, batch_size)
    model.compile(
        recipes.cosine_adam(LEARNING_RATE, total),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(
        x, y, epochs=epochs, batch_size=batch_size, validation_data=test, verbose=verbose
    )
    return history.history["val_accuracy"]


def run_regime(
    name, method_names, seeds, output_dir, dataset_override=None, verbose=0, only_students=()
):
    """Runs (or resumes) one regime; returns its results dict, also saved as ``<regime>.json``."""
    dataset, students, batch_size, train_size, epochs = REGIMES[name]
    dataset = dataset_override if dataset_override and dataset == "fashion_mnist" else dataset
    path = os.path.join(output_dir, f"{name}.json")
    result = {"regime": name, "epochs": epochs, "train_size": train_size, "rows": {}}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as file:
            result = json.load(file)
    (x_all, y_all), test = kd.data.load(dataset)
    teacher = load_teacher(REGIMES[name][0], x_all, y_all, output_dir, verbose)
    order = np.random.default_rng(0).permutation(len(x_all))[: train_size or len(x_all)]
    data = ((x_all[order], y_all[order]), test)
    result["teacher"] = {
        "accuracy": float(teacher.evaluate(*test, verbose=0)[1]),
        "macs": count_macs(teacher),
        "params": teacher.count_params(),
    }
    rows = ["scratch", *[m for m in method_names if m != "scratch"]]
    rows = [m for m in rows if m != "patient" or name in LONG_REGIMES]
    if name.startswith("holdout_"):
        rows = [m for m in rows if m in HOLDOUT_METHODS]
    for kind in [k for k in students if not only_students or k in only_students]:
        classes = int(y_all.max()) + 1
        for seed in range(seeds):
            keras.utils.set_random_seed(seed + 1)
            initial = _student(kind, x_all.shape[1:], classes)
            result.setdefault("students", {})[kind] = {
                "macs": count_macs(initial),
                "params": initial.count_params(),
            }
            for method in rows:
                cell = result["rows"].setdefault(f"{kind}/{method}", {})
                if str(seed) in cell:
                    continue
                twin = _same_configuration(method, rows, len(data[0][1]) / classes)
                if twin and str(seed) in result["rows"].get(f"{kind}/{twin}", {}):
                    # Runs are deterministic given the seed: the default's twin row is its result.
                    cell[str(seed)] = {
                        **result["rows"][f"{kind}/{twin}"][str(seed)],
                        "same_as": twin,
                    }
                    _save(result, path)
                    continue
                start = time.perf_counter()
                curve = train_row(method, initial, teacher, data, epochs, batch_size, seed, verbose)
                cell[str(seed)] = {
                    "accuracy": float(curve[-1]),
                    "curve": [round(float(a), 4) for a in curve],
                    "seconds": round(time.perf_counter() - start, 1),
                }
                print(f"{name} {kind} seed {seed} {method:8s} {curve[-1]:.4f}", flush=True)
                _save(result, path)
    return result


def _save(result, path):
    """Writes ``result``, keeping the runs another process saved there meanwhile (e.g. one process
    per ``--regime_students``)."""
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as file:
            saved = json.load(file)
        for key, cells in saved["rows"].items():
            for seed, cell in cells.items():
                result["rows"].setdefault(key, {}).setdefault(seed, cell)
        for kind, facts in saved.get("students", {}).items():
            result.setdefault("students", {}).setdefault(kind, facts)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(result, file, indent=1)
    os.replace(temporary, path)


def run(
    regimes=SUITE,
    method_names=METHODS,
    seeds=3,
    output_dir="keras_kd_runs/regimes",
    dataset=None,
    verbose=0,
    students=(),
    report_only=False,
):
    """Runs the regimes and writes the table; returns ``{"table", "summary", "machine"}``."""
    os.makedirs(output_dir, exist_ok=True)
    start = time.perf_counter()
    for name in () if report_only else regimes:
        run_regime(name, method_names, seeds, output_dir, dataset, verbose, students)
    results = []
    for name in REGIMES:
        path = os.path.join(output_dir, f"{name}.json")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as file:
                results.append(json.load(file))
    table, summary = summarize(results)
    machine = describe_machine()
    train_seconds = sum(
        cell["seconds"]
        for result in results
        for cells in result["rows"].values()
        for cell in cells.values()
        if "same_as" not in cell
    )
    footer = (
        f"Machine: {machine['cpu']}, {machine['cores']} cores. Training time of these results: "
        f"{train_seconds / 3600:.1f} h (sum of the runs' wall times)."
    )
    table = f"{table}\n\n{footer}"
    with open(os.path.join(output_dir, "regimes.md"), "w", encoding="utf-8") as file:
        file.write(table + "\n")
    return {
        "table": table,
        "summary": summary,
        "machine": machine,
        "seconds": round(time.perf_counter() - start, 1),
        "train_seconds": round(train_seconds, 1),
    }


def main(argv):
    common_flags.reject_extra_arguments(argv)
    if FLAGS.threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    result = run(
        FLAGS.regimes,
        FLAGS.regime_methods,
        FLAGS.seeds,
        FLAGS.output_dir,
        FLAGS.dataset if FLAGS["dataset"].present else None,
        int(FLAGS.verbose),
        FLAGS.regime_students,
        FLAGS.report_only,
    )
    print(result["table"])
    print(json.dumps({k: result[k] for k in ("summary", "machine", "seconds", "train_seconds")}))


if __name__ == "__main__":
    common_flags.run_app(main, FLAGS)
