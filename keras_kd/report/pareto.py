"""Which candidates are worth shipping: the Pareto front and the choice inside a device budget."""

_LIMITS = (
    ("max_bytes", "bytes", lambda value, limit: value <= limit),
    ("max_latency_ms", "latency_ms", lambda value, limit: value <= limit),
    ("min_accuracy", "accuracy", lambda value, limit: value >= limit),
)


def pareto_front(candidates, maximize=("accuracy",), minimize=("bytes", "latency_ms")):
    """Returns the candidates that no other candidate dominates.

    A candidate dominates another when it is at least as good in every objective and strictly
    better in one (Pareto 1896; the usual multi-objective definition, e.g. Deb 2001,
    "Multi-Objective Optimization using Evolutionary Algorithms"). Candidates with equal
    objectives do not dominate each other, so both stay on the front.

    Args:
        candidates: A sequence of dicts holding (at least) the objective keys.
        maximize: Keys where larger is better.
        minimize: Keys where smaller is better.

    Returns:
        The non-dominated candidates, in their input order.

    Raises:
        ValueError: If no objective is given or a candidate lacks an objective key.

    Example:
        >>> rows = [{"name": "a", "accuracy": 0.9, "bytes": 10}, {"name": "b", "accuracy": 0.8,
        ...          "bytes": 20}]
        >>> [r["name"] for r in pareto_front(rows, minimize=("bytes",))]
        ['a']
    """
    maximize, minimize = tuple(maximize), tuple(minimize)
    if not maximize and not minimize:
        raise ValueError(
            "maximize and minimize must name at least one objective, received: "
            f"maximize={maximize}, minimize={minimize}"
        )
    keys = maximize + minimize
    for candidate in candidates:
        missing = [key for key in keys if candidate.get(key) is None]
        if missing:
            raise ValueError(
                f"every candidate must hold the objectives {list(keys)}, received: "
                f"{candidate.get('name', candidate)!r} without {missing}"
            )

    def scores(candidate):
        return [candidate[k] for k in maximize] + [-candidate[k] for k in minimize]

    def dominates(a, b):
        sa, sb = scores(a), scores(b)
        return all(x >= y for x, y in zip(sa, sb, strict=True)) and sa != sb

    return [c for c in candidates if not any(dominates(o, c) for o in candidates if o is not c)]


def violations(candidate, max_bytes=0, max_latency_ms=0, min_accuracy=0, min_agreement=0.99):
    """Lists the budget limits a candidate breaks, as readable strings (empty when it fits).

    A limit of 0 means no limit. ``min_agreement`` is not a budget but a sanity check: an
    exported file whose top-1 answers agree with its own Keras model on less than that fraction
    of the inputs is a broken export (its violation says so); a candidate without an
    ``agreement`` value is not checked.

    Args:
        candidate: A dict with ``bytes``, ``latency_ms`` and ``accuracy`` (and ``agreement``).
        max_bytes: Largest allowed file size in bytes (0: no limit).
        max_latency_ms: Largest allowed latency in milliseconds (0: no limit).
        min_accuracy: Smallest allowed accuracy in [0, 1] (0: no limit).
        min_agreement: Smallest agreement with the Keras model in [0, 1] (0: no check).

    Returns:
        A list such as ``["bytes 12,000 > max_bytes 10,000"]``.

    Example:
        >>> violations({"bytes": 12000, "latency_ms": 1.0, "accuracy": 0.9}, max_bytes=10000)
        ['bytes 12,000 > max_bytes 10,000']
    """
    limits = {
        "max_bytes": max_bytes,
        "max_latency_ms": max_latency_ms,
        "min_accuracy": min_accuracy,
    }
    broken = []
    for flag, key, ok in _LIMITS:
        limit = limits[flag]
        if limit and not ok(candidate[key], limit):
            sign = "<" if flag.startswith("min") else ">"
            broken.append(f"{key} {_number(candidate[key])} {sign} {flag} {_number(limit)}")
    agreement = candidate.get("agreement")
    if min_agreement and agreement is not None and agreement < min_agreement:
        broken.append(f"agreement {agreement:.4f} < min_agreement {min_agreement:g}: broken export")
    return broken


def choose(candidates, max_bytes=0, max_latency_ms=0, min_accuracy=0, min_agreement=0.99):
    """Picks the most accurate candidate inside the budget; ties go to the smaller, then faster one.

    A candidate whose ``agreement`` with its Keras model is below ``min_agreement`` is a broken
    export and is never chosen (see ``violations``).

    Args:
        candidates: A sequence of dicts with ``name``, ``accuracy``, ``bytes`` and ``latency_ms``
            (and optionally ``agreement``).
        max_bytes: Largest allowed file size in bytes (0: no limit).
        max_latency_ms: Largest allowed latency in milliseconds (0: no limit).
        min_accuracy: Smallest allowed accuracy in [0, 1] (0: no limit).
        min_agreement: Smallest allowed agreement in [0, 1] (0: no check).

    Returns:
        ``(chosen, rejected)``: the chosen candidate dict, or ``None`` when none fits, and
        ``{name: [violations]}`` for every candidate outside the budget.

    Raises:
        ValueError: If a limit is negative or ``min_accuracy`` or ``min_agreement`` is above 1.

    Example:
        >>> rows = [{"name": "big", "accuracy": 0.95, "bytes": 90_000, "latency_ms": 2.0},
        ...         {"name": "small", "accuracy": 0.90, "bytes": 9_000, "latency_ms": 0.5}]
        >>> chosen, rejected = choose(rows, max_bytes=10_000)
        >>> chosen["name"], list(rejected)
        ('small', ['big'])
    """
    for name, value in (("max_bytes", max_bytes), ("max_latency_ms", max_latency_ms)):
        if value is None or value < 0:
            raise ValueError(f"{name} must be >= 0 (0: no limit), received: {name}={value!r}")
    for name, value in (("min_accuracy", min_accuracy), ("min_agreement", min_agreement)):
        if value is None or not 0 <= value <= 1:
            raise ValueError(f"{name} must be in [0, 1] (0: no limit), received: {name}={value!r}")
    rejected, fitting = {}, []
    for candidate in candidates:
        broken = violations(candidate, max_bytes, max_latency_ms, min_accuracy, min_agreement)
        if broken:
            rejected[candidate["name"]] = broken
        else:
            fitting.append(candidate)
    if not fitting:
        return None, rejected
    return (
        min(fitting, key=lambda c: (-c["accuracy"], c["bytes"], c["latency_ms"], c["name"])),
        rejected,
    )


def _number(value):
    if isinstance(value, int) or float(value).is_integer() and value >= 1000:
        return f"{int(value):,}"
    return f"{value:.4g}"
