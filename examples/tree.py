r"""Distils a CNN teacher into a soft decision tree and compares it with the tree trained on labels.

Frosst & Hinton (2017), "Distilling a Neural Network Into a Soft Decision Tree": a soft decision tree
learns better from a network's soft targets than from the hard labels. This script trains the
example CNN teacher, then the same tree (same initial weights, epochs and seed) twice: on the hard
labels and by distillation (``--tree_logit_loss``: by default DIST, the Distiller's default loss,
at ``--temperature`` 4 with ``--alpha`` 0.5; ``kd`` is the paper's soft targets, ``LogitsKD``), and
writes pictures of the distilled tree:

    python -m examples.tree
    python -m examples.tree --tree_depth=8 --seeds=3   # seeds 0, 1, 2: a table of mean ± std
    nice -n 10 python -m examples.tree --dataset=fashion_mnist \
        --tree_depth=5 --epochs=10 --teacher_epochs=5

Accuracies are given for both inference modes: the mixture of all leaves and the single most
probable leaf (the paper's interpretable prediction). ``--output_dir`` receives
``tree_filters.png`` (every node's filter, laid out as the tree), ``tree_path.png`` (the path of
the first test example) and ``tree.keras``. The last line of output is one JSON object with
``teacher_acc``, ``hard_acc``, ``distilled_acc``, ``hard_max_path_acc``, ``distilled_max_path_acc``,
``teacher_params``, ``tree_params``, ``filters_png``, ``path_png`` and ``tree_path``.

With ``--seeds=N`` (N > 1) it runs seeds ``--seed`` to ``--seed + N - 1`` (teacher and trees alike,
each seed's files in ``<output_dir>/seed<S>``), prints each seed's accuracies and README's
soft-tree table (mean ± population standard deviation over the seeds, ``format_table``), writes
that table to ``<output_dir>/summary.md``, and its JSON line holds ``seeds``, ``depth``, ``runs``
(each seed's results), ``summary`` (mean and std of every accuracy), ``teacher_params``,
``tree_params`` and ``table``.
"""

import os
import sys

if not __package__:  # python examples/<name>.py: import the package as `python -m` does
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)


import numpy as np
from absl import flags, logging

import keras_kd as kd
from examples import common_flags
from examples.models import train_teacher
from keras_kd import keras
from keras_kd.students import SoftDecisionTree, tree_plots

FLAGS = flags.FlagValues()
flags.DEFINE_integer(
    "tree_depth",
    4,
    "Depth of the soft decision tree (2**depth leaves).",
    lower_bound=1,
    upper_bound=10,
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "tree_inverse_temperature",
    1.0,
    "Inverse temperature beta of the node filters.",
    lower_bound=1e-6,
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "tree_penalty_strength",
    0.1,
    "Strength lambda of the balancing penalty.",
    lower_bound=0.0,
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "tree_penalty_decay",
    0.5,
    "Per-level decay of the penalty (0.5: 2**-depth).",
    lower_bound=1e-6,
    upper_bound=1.0,
    flag_values=FLAGS,
)
flags.DEFINE_enum(
    "tree_inference",
    "mixture",
    ["mixture", "max_path"],
    "Inference mode of the saved tree.",
    flag_values=FLAGS,
)
flags.DEFINE_enum(
    "tree_logit_loss",
    "dist",
    ["dist", "kd"],
    "Distillation loss of the tree: dist (DIST, beta=gamma=2, the Distiller's default) or kd "
    "(Hinton KD, the paper's soft targets), at --temperature.",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "tree_teacher_learning_rate",
    3e-3,
    "Adam learning rate of the teacher.",
    lower_bound=1e-9,
    flag_values=FLAGS,
)


def _accuracies(tree, x, y):
    """Accuracy of the mixture and of the most probable leaf."""
    paths = tree.path_probabilities(x)
    leaves = tree.leaf_probabilities()
    mixture = np.mean((paths @ leaves).argmax(axis=1) == y)
    max_path = np.mean(leaves[paths.argmax(axis=1)].argmax(axis=1) == y)
    return float(mixture), float(max_path)


@common_flags.with_settings(
    "dataset train_size teacher_epochs seed teacher_width verbose",
    epochs=20,
    batch_size=32,
    learning_rate=1e-2,
    temperature=4.0,  # with alpha 0.5 and DIST, the Distiller's defaults
    alpha=0.5,
    output_dir="keras_kd_runs/tree",
)
def run(
    s,
    depth=4,
    inverse_temperature=1.0,
    penalty_strength=0.1,
    penalty_decay=0.5,
    inference="mixture",
    teacher_learning_rate=3e-3,
    logit_loss="dist",
):
    """Trains the teacher, the tree on hard labels and the distilled tree; returns the results dict.

    ``s`` holds the shared flags' values (``common_flags.with_settings``); the arguments are
    the script's flags (``--helpfull``).

    ``train_size`` > 0 keeps that many training examples (a fixed random subset). See the module
    docstring for the returned keys.
    """
    (x_train, y_train), (x_test, y_test) = kd.data.load(s.dataset)
    if s.train_size:
        keep = np.random.default_rng(s.seed).permutation(len(x_train))[: s.train_size]
        x_train, y_train = x_train[keep], y_train[keep]
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    logging.info("Training the teacher on %s (%d examples)", s.dataset, len(x_train))
    fit = dict(batch_size=s.batch_size, verbose=s.verbose)
    teacher = train_teacher(
        x_train, y_train, s.teacher_epochs, s.teacher_width, learning_rate=teacher_learning_rate,
        seed=s.seed, num_classes=num_classes, **fit,
    )  # fmt: skip
    teacher_acc = float(teacher.evaluate(x_test, y_test, verbose=0)[1])

    keras.utils.set_random_seed(s.seed + 1)
    hard = SoftDecisionTree(
        depth,
        num_classes,
        x_train.shape[1:],
        inverse_temperature=inverse_temperature,
        penalty_strength=penalty_strength,
        penalty_decay=penalty_decay,
        inference=inference,
    )
    distilled = SoftDecisionTree.from_config(hard.get_config())
    distilled.set_weights(hard.get_weights())

    logging.info("Training the tree (depth %d) on the hard labels", depth)
    keras.utils.set_random_seed(s.seed + 2)
    kd.recipes.train_classifier(
        hard, x_train, y_train, s.epochs, learning_rate=s.learning_rate, schedule="constant", **fit
    )

    logging.info(
        "Distilling the teacher into the tree (%s, T=%s, alpha=%s)",
        logit_loss,
        s.temperature,
        s.alpha,
    )
    keras.utils.set_random_seed(s.seed + 2)
    if logit_loss == "kd":
        loss = kd.losses.LogitsKD(temperature=s.temperature)
    else:
        loss = kd.losses.DIST(beta=2.0, gamma=2.0, temperature=s.temperature)
    distiller = kd.Distiller(student=distilled, teacher=teacher, losses=[loss], alpha=s.alpha)
    distiller.compile(
        keras.optimizers.Adam(s.learning_rate), kd.recipes.hard_loss(), metrics=["accuracy"]
    )
    distiller.fit(x_train, y_train, epochs=s.epochs, **fit)

    hard_acc, hard_max_path_acc = _accuracies(hard, x_test, y_test)
    distilled_acc, distilled_max_path_acc = _accuracies(distilled, x_test, y_test)
    os.makedirs(s.output_dir, exist_ok=True)
    filters_png = tree_plots.plot_tree_filters(
        distilled, os.path.join(s.output_dir, "tree_filters.png")
    )
    path_png = tree_plots.plot_tree_path(
        distilled, x_test[0], os.path.join(s.output_dir, "tree_path.png")
    )
    tree_path = os.path.join(s.output_dir, "tree.keras")
    distilled.save(tree_path)
    return {
        "teacher_acc": teacher_acc,
        "hard_acc": hard_acc,
        "distilled_acc": distilled_acc,
        "hard_max_path_acc": hard_max_path_acc,
        "distilled_max_path_acc": distilled_max_path_acc,
        "teacher_params": int(teacher.count_params()),
        "tree_params": int(distilled.count_params()),
        "filters_png": os.path.abspath(filters_png),
        "path_png": os.path.abspath(path_png),
        "tree_path": os.path.abspath(tree_path),
    }


ACCURACIES = (
    "teacher_acc",
    "hard_acc",
    "hard_max_path_acc",
    "distilled_acc",
    "distilled_max_path_acc",
)


def summarize(runs):
    """Mean and population standard deviation (``np.std``) of every accuracy over several runs.

    Args:
        runs: The results of ``run`` for several seeds.

    Returns:
        ``{key: {"mean": float, "std": float}}`` for every key of ``ACCURACIES``.

    Example:
        >>> stats = summarize([{k: 0.8 for k in ACCURACIES}, {k: 0.9 for k in ACCURACIES}])
        >>> round(stats["hard_acc"]["mean"], 3), round(stats["hard_acc"]["std"], 3)
        (0.85, 0.05)
    """
    summary = {}
    for key in ACCURACIES:
        values = np.array([r[key] for r in runs], dtype=np.float64)
        summary[key] = {"mean": float(values.mean()), "std": float(values.std())}
    return summary


def format_table(result):
    """README's soft-tree table for ``run_seeds``' result: mean ± std over the seeds, 3 decimals.

    Args:
        result: What ``run_seeds`` returned.

    Returns:
        A markdown table (header, separator and one row) as one string.
    """

    def cell(key):
        stats = result["summary"][key]
        return f"{stats['mean']:.3f} ± {stats['std']:.3f}"

    return "\n".join(
        [
            f"| depth (parameters) | teacher ({result['teacher_params']:,} parameters) "
            "| tree on labels | tree distilled |",
            "| --- | --- | --- | --- |",
            f"| {result['depth']} ({result['tree_params']:,}) | {cell('teacher_acc')} "
            f"| {cell('hard_acc')} (max path {cell('hard_max_path_acc')}) "
            f"| {cell('distilled_acc')} (max path {cell('distilled_max_path_acc')}) |",
        ]
    )


def run_seeds(seeds, seed=0, output_dir="keras_kd_runs/tree", depth=4, **kwargs):
    """Runs ``run`` for seeds ``seed`` .. ``seed + seeds - 1`` and aggregates their accuracies.

    Args:
        seeds: Number of seeds (>= 1).
        seed: The first seed.
        output_dir: Each seed writes its files to ``<output_dir>/seed<S>``.
        depth: Depth of the tree.
        **kwargs: The other arguments of ``run``.

    Returns:
        ``{"seeds", "depth", "runs", "summary", "teacher_params", "tree_params", "table"}``:
        ``runs`` holds each seed's results, ``summary`` is ``summarize(runs)`` and ``table`` is
        ``format_table`` of the rest.

    Example:
        >>> result = run_seeds(2, dataset="digits", epochs=1, teacher_epochs=1, depth=2)
        >>> print(result["table"])
    """
    seed_list = list(range(seed, seed + seeds))
    runs = [
        run(seed=s, output_dir=os.path.join(output_dir, f"seed{s}"), depth=depth, **kwargs)
        for s in seed_list
    ]
    result = {
        "seeds": seed_list,
        "depth": depth,
        "runs": runs,
        "summary": summarize(runs),
        "teacher_params": runs[0]["teacher_params"],
        "tree_params": runs[0]["tree_params"],
    }
    result["table"] = format_table(result)
    return result


def _print_seeds(result, output_dir):
    """Prints each seed's accuracies and the table, writes the table, then the JSON line."""
    for seed, res in zip(result["seeds"], result["runs"]):
        print(
            f"seed {seed}: teacher {res['teacher_acc']:.4f}, labels {res['hard_acc']:.4f} "
            f"(max path {res['hard_max_path_acc']:.4f}), distilled {res['distilled_acc']:.4f} "
            f"(max path {res['distilled_max_path_acc']:.4f})"
        )
    print(result["table"])
    path = os.path.join(output_dir, "summary.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(result["table"] + "\n")
    common_flags.print_result(result, f"table: {os.path.abspath(path)}")


common_flags.define(FLAGS, run, seeds=1)


def main(argv):
    common_flags.reject_extra_arguments(argv)
    names = dict(depth="tree_depth", inverse_temperature="tree_inverse_temperature")
    names.update(
        logit_loss="tree_logit_loss",
        penalty_strength="tree_penalty_strength",
        penalty_decay="tree_penalty_decay",
    )
    names.update(inference="tree_inference", teacher_learning_rate="tree_teacher_learning_rate")
    settings = common_flags.arguments(run, FLAGS, **names)
    if FLAGS.seeds > 1:
        _print_seeds(run_seeds(FLAGS.seeds, **settings), settings["output_dir"])
        return
    result = run(**settings)
    common_flags.print_result(
        result,
        f"teacher         accuracy {result['teacher_acc']:.4f}",
        f"tree, labels    accuracy {result['hard_acc']:.4f} "
        f"(max path {result['hard_max_path_acc']:.4f})",
        f"tree, distilled accuracy {result['distilled_acc']:.4f} "
        f"(max path {result['distilled_max_path_acc']:.4f})",
        f"pictures: {result['filters_png']} {result['path_png']}",
    )


if __name__ == "__main__":
    common_flags.run_app(main, FLAGS)
