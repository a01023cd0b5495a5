"""What the example scripts' ``--method``, ``--pairs`` and ``--scheme`` flags build.

Each feature and relational method is the Distiller's default logit loss (DIST with
``beta=gamma=2``, Huang et al. 2022; ``keras_kd.losses.defaults``) at the script's temperature plus
the method's own loss, with a weight that trains stably on the example models (papers' weights
were set for other feature sizes; see each loss's docstring). ``kd`` is Hinton et al.'s
``LogitsKD`` alone; DKD replaces the logit term and, as in its paper, keeps the full cross-entropy
on labels; DIST is the logit term alone, with ``alpha`` on the labels. ``METHODS`` are the names of
``keras_kd.losses.get`` except ``multi_kd``, which needs several teachers
(``--scheme=multi_teacher``).
"""

from examples.models import make_teacher
from keras_kd import keras, losses, schemes

METHODS = ("kd", "dkd", "dist", "fitnet", "at", "fsp", "nst", "rkd", "sp", "pkt", "cc")
SCHEMES = (
    "none",
    "mutual_learning",
    "born_again",
    "teacher_assistant",
    "label_refinery",
    "fsp_two_stage",
    "self_compress",
    "multi_teacher",
)

_BLOCKS = [("t_block1", "s_block1"), ("t_block2", "s_block2")]
_EMBEDDINGS = [("t_dense", "s_global_pool")]
# Default layer pairs of the example models (examples/models.py) and the method loss's weight.
_RECIPES = {
    "fitnet": (_BLOCKS, 1.0),
    "at": (_BLOCKS, 10.0),
    "fsp": ([("t_pool1", "s_pool1"), ("t_block2", "s_block2")], 1.0),
    "nst": (_BLOCKS, 1.0),
    "rkd": (_EMBEDDINGS, 1.0),
    "sp": (_EMBEDDINGS, 3000.0),
    "pkt": (_EMBEDDINGS, 30000.0 / 64),
    "cc": (_EMBEDDINGS, 0.02),
}


def parse_pairs(text):
    """Parses ``"t_a:s_a,t_b:s_b"`` into ``[("t_a", "s_a"), ("t_b", "s_b")]``; ``""`` gives ``None``.

    Args:
        text: Comma-separated ``teacher_layer:student_layer`` items.

    Returns:
        A list of name pairs, or ``None`` for an empty string.

    Raises:
        ValueError: If an item is not of the form ``teacher_layer:student_layer``.

    Example:
        >>> parse_pairs("t_block1:s_block1")
        [('t_block1', 's_block1')]
    """
    if not text:
        return None
    pairs = []
    for item in text.split(","):
        names = item.strip().split(":")
        if len(names) != 2 or not all(names):
            raise ValueError(
                f"pairs items must look like teacher_layer:student_layer, received: {item!r}"
            )
        pairs.append(tuple(names))
    return pairs


def make_losses(method, temperature, alpha, pairs=None, loss_weight=None, logit=None):
    """Builds the Distiller arguments of a method: ``{"losses", "alpha", "loss_weights"}``.

    Args:
        method: One of ``METHODS``.
        temperature: Soft-target temperature.
        alpha: Weight of the hard-label loss (DKD always uses 1.0, as in its paper).
        pairs: Layer pairs for feature and relational methods (for ``fsp``, consecutive pairs make
            one flow); ``None`` uses the example models' layers.
        loss_weight: Weight of the method's own loss; ``None`` uses the recipe's (``1 - alpha``
            for ``dist``, 1.0 for ``dkd``).
        logit: A function returning the logit term of a feature or relational method; ``None``:
            ``DIST(beta=2, gamma=2, temperature=temperature)``, the Distiller's default loss.

    Returns:
        Keyword arguments for ``keras_kd.Distiller``.

    Raises:
        ValueError: If ``method`` is unknown.

    Example:
        >>> distiller = kd.Distiller(student, teacher, **make_losses("at", 4.0, 0.1))
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, received: method={method!r}")
    if method == "kd":
        return {"losses": [losses.LogitsKD(temperature)], "alpha": alpha}
    if method == "dkd":
        weight = 1.0 if loss_weight is None else loss_weight
        return {
            "losses": [losses.DKD(temperature=temperature)],
            "alpha": 1.0,
            "loss_weights": [weight],
        }
    if logit is None:

        def logit():
            return losses.DIST(beta=2.0, gamma=2.0, temperature=temperature)

    if method == "dist":
        weight = 1.0 - alpha if loss_weight is None else loss_weight
        return {"losses": [logit()], "alpha": alpha, "loss_weights": [weight]}
    default_pairs, default_weight = _RECIPES[method]
    pairs = pairs or default_pairs
    if method == "fsp":
        extra = losses.FSP.from_pairs(pairs)
    else:
        extra = losses.get(method, pairs=pairs)
    weight = default_weight if loss_weight is None else loss_weight
    return {
        "losses": [logit(), extra],
        "alpha": alpha,
        "loss_weights": [1.0 - alpha, weight],
    }


def train_with_scheme(
    scheme, teacher, student, train, epochs, batch_size, learning_rate, temperature, alpha
):
    """Trains ``student`` (or a model like it) by a scheme of ``keras_kd.schemes``; returns the model.

    Args:
        scheme: One of ``SCHEMES`` other than ``"none"``.
        teacher: The trained teacher.
        student: The initial student (functional; cloned where a scheme needs fresh copies). For
            ``self_compress`` it is the trained float model that teaches its pruned copy.
        train: ``(x, y)`` training arrays.
        epochs: Epochs of each training run in the scheme.
        batch_size: Batch size.
        learning_rate: Adam learning rate of every model.
        temperature: Soft-target temperature.
        alpha: Weight of the hard-label loss where the scheme has one.

    Returns:
        The trained student (for ``born_again``, the last generation; ``label_refinery``, the best
        round; ``self_compress``, the stripped copy pruned to 50 % sparsity).

    Raises:
        ValueError: If ``scheme`` is unknown.

    Example:
        >>> model = train_with_scheme("born_again", teacher, student, (x, y), 5, 64, 3e-3, 4.0, 0.1)
    """
    trainable_here = [s for s in SCHEMES if s not in ("none", "multi_teacher")]
    if scheme not in trainable_here:
        raise ValueError(
            f"scheme must be one of {trainable_here} (multi_teacher needs the caller's teachers), "
            f"received: scheme={scheme!r}"
        )
    common = {
        "epochs": epochs,
        "batch_size": batch_size,
        "optimizer": lambda: keras.optimizers.Adam(learning_rate),
    }
    # The Distiller-based schemes distill by Hinton KD at the script's temperature and alpha.
    distill = {"losses": lambda: [losses.LogitsKD(temperature)], "alpha": alpha, **common}

    def fresh():
        return keras.models.clone_model(student)

    if scheme == "mutual_learning":
        return schemes.mutual_learning([student, fresh()], train, **common).models[0]
    if scheme == "born_again":
        return schemes.born_again(teacher, fresh, train, generations=2, **distill).student
    if scheme == "teacher_assistant":
        shape, classes = student.input_shape[1:], student.output_shape[-1]
        assistant = make_teacher(
            shape, classes, width=16
        )  # the teacher's architecture, a quarter wide
        return schemes.teacher_assistant(teacher, [assistant], student, train, **distill).student
    if scheme == "label_refinery":
        x, y = train
        cut = len(y) * 4 // 5
        return schemes.label_refinery(
            fresh, (x[:cut], y[:cut]), (x[cut:], y[cut:]), max_rounds=2, **distill
        ).student
    if scheme == "fsp_two_stage":
        flows = losses.FSP.from_pairs(_RECIPES["fsp"][0]).flows
        return schemes.fsp_two_stage(
            teacher, student, train, flows=flows, kd=True, **distill
        ).student
    from keras_kd import compress  # self_compress, the one scheme left

    def prune(model):
        return compress.prune(model, 0.5, schedule="constant", frequency=1)

    return compress.strip(schemes.self_compress(student, prune, train, **distill).student)
