r"""Benchmarks the training schemes against a scratch student and plain KD, over several seeds.

For each seed: a random training subset, the example CNN teacher, then the example student trained
from scratch, by plain KD (one Distiller), and by each scheme of ``keras_kd.schemes``, all with the
library's measured defaults (``--temperature`` switches the distilling rows to Hinton KD at that
temperature; ``--alpha`` sets their hard-label weight). Every student model trains ``--epochs``
epochs per training run; the ``student epochs`` column counts all the runs that produced the
reported model, and the scratch student is also trained for each such total, so that every row is
compared with scratch at an equal total budget. Prints a markdown table of test accuracy, mean +-
std over seeds, and a last line with one JSON object.

    python -m examples.benchmark_schemes --train_size=10000 --epochs=5 --seeds=2

Rows: ``scratch``; ``kd``; ``mutual_learning`` (a cohort of two students, the first reported);
``born_again`` (two generations from the scratch student, the last generation reported) and
``born_again_ensemble`` (their ensemble: twice the parameters); ``teacher_assistant`` (teacher ->
a width-32 student -> student); ``label_refinery`` (up to 2 refinement rounds, the best on a
validation split outside the training subset); ``fsp_two_stage`` (stage 1 on the FSP flows of a
teacher of the student's widths, ``t_pool1 -> t_block2``, then stage 2 with KD from it);
``self_compress`` (the scratch student teaching its own copy pruned to half sparsity).
"""

import os
import sys

if not __package__:  # python examples/<name>.py: import the package as `python -m` does
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)

import json

import numpy as np
from absl import flags, logging

import keras_kd as kd
from examples import common_flags
from examples.models import make_student, make_teacher
from keras_kd import keras, schemes

FLAGS = flags.FlagValues()

ROWS = (
    "scratch",
    "kd",
    "mutual_learning",
    "born_again",
    "born_again_ensemble",
    "teacher_assistant",
    "label_refinery",
    "fsp_two_stage",
    "self_compress",
)

flags.DEFINE_multi_enum(
    "rows", list(ROWS), ROWS, "Rows to run (repeat the flag).", flag_values=FLAGS
)


_EPOCH_RUNS = {  # training runs of --epochs behind each reported model
    "scratch": 1,
    "kd": 1,
    "mutual_learning": 1,
    "born_again": 3,
    "born_again_ensemble": 3,
    "teacher_assistant": 2,
    "label_refinery": 3,
    "fsp_two_stage": 2,
    "self_compress": 2,
}


def _subsets(x, y, train_size, seed):
    """A random training subset and a disjoint validation split (from the rest, else the subset)."""
    order = np.random.default_rng(seed).permutation(len(x))
    train_size = min(train_size, len(x))
    rest = order[train_size:]
    if len(rest) >= 500:
        train, val = order[:train_size], rest[: min(len(rest), max(train_size // 5, 500))]
    else:
        cut = train_size * 4 // 5
        train, val = order[:cut], order[cut:train_size]
    return (x[train], y[train]), (x[val], y[val])


def _accuracy(model, x, y):
    predicted = np.argmax(model.predict(x, batch_size=512, verbose=0), axis=-1)
    return float(np.mean(predicted == y))


def _one_seed(seed, data, s, rows):
    """Trains the teacher and every requested row for one seed.

    Args:
        seed: The seed of this run.
        data: ``kd.data.load``'s ``((x, y), (x_test, y_test))``.
        s: ``run``'s shared settings.
        rows: Names from ``ROWS``.

    Returns:
        ``({row: test accuracy}, {row: training runs behind it}, {runs: scratch test accuracy})``.
    """
    (x_all, y_all), (x_test, y_test) = data
    train, val = _subsets(x_all, y_all, s.train_size, seed)
    shape, classes = train[0].shape[1:], int(max(y_all.max(), y_test.max())) + 1
    common = {
        "epochs": s.epochs,
        "batch_size": s.batch_size,
        "optimizer": lambda: keras.optimizers.Adam(s.learning_rate),
        "verbose": s.verbose,
    }
    if s.temperature is not None:
        common["losses"] = lambda: [kd.losses.LogitsKD(s.temperature)]
    common["alpha"] = s.alpha
    runs = dict(_EPOCH_RUNS)

    def student(width=16):
        return make_student(shape, classes, width=width)

    def fit_plain(model, fit_epochs):
        model.compile(keras.optimizers.Adam(s.learning_rate), _ce(), metrics=["accuracy"])
        model.fit(*train, epochs=fit_epochs, batch_size=s.batch_size, verbose=s.verbose)
        return model

    keras.utils.set_random_seed(seed)
    teacher = fit_plain(make_teacher(shape, classes), s.teacher_epochs)
    result = {"teacher": _accuracy(teacher, x_test, y_test)}
    keras.utils.set_random_seed(seed + 1)
    initial = student()
    scratch = fit_plain(_copy(initial), s.epochs)
    result["scratch"] = _accuracy(scratch, x_test, y_test)
    for row in rows:
        keras.utils.set_random_seed(seed + 2)
        logging.info("seed %d: %s", seed, row)
        if row == "kd":
            model = _copy(initial)
            losses = common["losses"]() if "losses" in common else None
            distiller = kd.Distiller(model, teacher, losses=losses, alpha=s.alpha)
            distiller.compile(keras.optimizers.Adam(s.learning_rate), _ce(), metrics=["accuracy"])
            distiller.fit(*train, epochs=s.epochs, batch_size=s.batch_size, verbose=s.verbose)
        elif row == "mutual_learning":
            cohort = [_copy(initial), student()]
            model = schemes.mutual_learning(cohort, train, **common).models[0]
        elif row in ("born_again", "born_again_ensemble"):
            if "born_again" in result:
                continue  # both rows come from one run
            ban = schemes.born_again(scratch, student, train, generations=2, **common)
            result["born_again"] = _accuracy(ban.student, x_test, y_test)
            result["born_again_ensemble"] = _accuracy(ban.extras["ensemble"], x_test, y_test)
            continue
        elif row == "teacher_assistant":
            model = schemes.teacher_assistant(
                teacher, [student(32)], _copy(initial), train, **common
            ).student
        elif row == "label_refinery":
            refinery = schemes.label_refinery(student, train, val, max_rounds=2, **common)
            model, runs[row] = refinery.student, len(refinery.models)
        elif row == "fsp_two_stage":
            fsp_teacher = fit_plain(make_teacher(shape, classes, width=16), s.teacher_epochs)
            result["fsp_teacher"] = _accuracy(fsp_teacher, x_test, y_test)
            flows = [(("t_pool1", "t_block2"), ("s_pool1", "s_block2"))]
            model = schemes.fsp_two_stage(
                fsp_teacher, _copy(initial), train, flows=flows, kd=True, **common
            ).student
        elif row == "self_compress":
            from keras_kd import compress

            def prune(model):
                return compress.prune(model, 0.5, schedule="constant", frequency=1)

            model = compress.strip(schemes.self_compress(scratch, prune, train, **common).student)
        else:
            continue  # scratch is always trained
        result[row] = _accuracy(model, x_test, y_test)
    budgets = {runs[row] for row in result if row in runs} - {1}
    same_budget = {1: result["scratch"]}
    for count in sorted(budgets):  # the scratch student at each total budget of a reported row
        keras.utils.set_random_seed(seed + 1)
        same_budget[count] = _accuracy(fit_plain(_copy(initial), count * s.epochs), x_test, y_test)
    return result, {row: runs[row] for row in result if row in runs}, same_budget


def _ce():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _copy(model):
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


@common_flags.with_settings(
    "batch_size learning_rate verbose",
    dataset="fashion_mnist",
    train_size=10000,
    epochs=5,
    teacher_epochs=5,
    temperature=None,
    alpha=None,
    seeds=2,
)
def run(s, rows=ROWS):
    """Runs the teacher, the scratch student and every requested row for each seed.

    ``s`` holds the shared flags' values (``common_flags.with_settings``); the arguments are
    the script's flags (``--helpfull``).

    Args:
        dataset: A ``keras_kd.data.load`` name.
        train_size: Training examples drawn at random for each seed. The label refinery's
            validation split comes from the other training examples (from the subset's last
            20 % when fewer than 500 remain, which it then does not train on).
        epochs: Epochs of each student training run.
        teacher_epochs: Epochs of the teachers.
        seeds: Number of seeds, run as 0, 1, ...
        batch_size: Batch size.
        learning_rate: Adam learning rate of every model.
        temperature: ``None`` (the measured default losses of the Distiller and of mutual
            learning's peer term), or the temperature of Hinton KD (``LogitsKD``) in every
            distilling row instead.
        alpha: Weight of the hard labels in every distilling row; ``None``: the measured
            defaults.
        rows: Names from ``ROWS``; the teacher and scratch are always run.
        verbose: Keras ``fit`` verbosity of every training run (0, 1 or 2).

    Returns:
        ``{"rows": {row: {"mean", "std", "runs"}}, "dataset", "train_size", "epochs",
        "teacher_epochs", "seeds"}`` with test accuracies. A student row's stats also hold
        ``student_epochs`` (per seed, all the training runs behind its model) and
        ``scratch_same_epochs`` (per seed, the scratch student trained for that many epochs).

    Example:
        >>> result = run(dataset="digits", train_size=512, epochs=2, seeds=1, rows=["kd"])
    """
    data = kd.data.load(s.dataset)
    per_seed = [_one_seed(seed, data, s, list(rows)) for seed in range(s.seeds)]
    table = {}
    for row in ["teacher", "fsp_teacher", *ROWS]:
        seeds_with_row = [(r, n, same) for r, n, same in per_seed if row in r]
        if not seeds_with_row:
            continue
        runs = [r[row] for r, _, _ in seeds_with_row]
        table[row] = {"mean": float(np.mean(runs)), "std": float(np.std(runs)), "runs": runs}
        if row in _EPOCH_RUNS:
            table[row]["student_epochs"] = [n[row] * s.epochs for _, n, _ in seeds_with_row]
            table[row]["scratch_same_epochs"] = [same[n[row]] for _, n, same in seeds_with_row]
    return {
        "dataset": s.dataset,
        "train_size": s.train_size,
        "epochs": s.epochs,
        "teacher_epochs": s.teacher_epochs,
        "seeds": s.seeds,
        "rows": table,
    }


common_flags.define(FLAGS, run)


def markdown(result):
    """Formats ``run``'s result as a markdown table of test accuracy, mean ± std over seeds.

    Args:
        result: What ``run`` returned.

    Returns:
        The table as one string.
    """
    lines = [
        "| model | student epochs | test accuracy (mean ± std) | scratch, same epochs "
        "| beats scratch at an equal budget |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row, stats in result["rows"].items():
        cells = [row, "-", f"{stats['mean']:.4f} ± {stats['std']:.4f}", "-", "-"]
        if "student_epochs" in stats:
            budgets = sorted(set(stats["student_epochs"]))
            cells[1] = "/".join(str(b) for b in budgets)  # the refinery may stop at another round
            same = stats["scratch_same_epochs"]
            cells[3] = f"{np.mean(same):.4f} ± {np.std(same):.4f}"
            if row != "scratch":
                wins = sum(a > b for a, b in zip(stats["runs"], same))
                verdict = "yes" if wins == len(same) else "no" if not wins else "mixed"
                cells[4] = f"{verdict} ({wins} of {len(same)} seeds)"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    common_flags.reject_extra_arguments(argv)
    result = run(**common_flags.arguments(run, FLAGS))
    print(markdown(result))
    print(json.dumps(result))


if __name__ == "__main__":
    common_flags.run_app(main, FLAGS)
