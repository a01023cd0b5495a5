"""Pareto front, budget violations and the choice of keras_kd.report (pure logic)."""

import pytest

from keras_kd.report import choose, pareto_front, violations


def _row(name, accuracy, size, latency=1.0):
    return {"name": name, "accuracy": accuracy, "bytes": size, "latency_ms": latency}


ROWS = [
    _row("big", 0.95, 90_000, 2.0),
    _row("mid", 0.93, 30_000, 1.0),
    _row("dominated", 0.90, 40_000, 1.5),  # worse than mid in every objective
    _row("small", 0.85, 8_000, 0.5),
    _row("slow_small", 0.85, 8_000, 3.0),  # small is as accurate, as small and faster
]


@pytest.mark.parametrize(
    "minimize, expected",
    [
        (("bytes", "latency_ms"), ["big", "mid", "small"]),
        (("bytes",), ["big", "mid", "small", "slow_small"]),
        (("latency_ms",), ["big", "mid", "small"]),
        ((), ["big"]),
    ],
)
def test_pareto_front_keeps_exactly_the_non_dominated_rows(minimize, expected):
    front = pareto_front(ROWS, maximize=("accuracy",), minimize=minimize)
    assert [r["name"] for r in front] == expected


def test_pareto_front_keeps_equal_rows_and_handles_empty_input():
    twins = [_row("a", 0.9, 10), _row("b", 0.9, 10)]
    assert [r["name"] for r in pareto_front(twins)] == ["a", "b"]
    assert pareto_front([]) == []


def test_pareto_front_rejects_missing_objectives():
    with pytest.raises(ValueError, match="without \\['latency_ms'\\]"):
        pareto_front([{"name": "x", "accuracy": 0.9, "bytes": 1}])
    with pytest.raises(ValueError, match="at least one objective"):
        pareto_front(ROWS, maximize=(), minimize=())


@pytest.mark.parametrize(
    "budget, chosen",
    [
        ({}, "big"),
        ({"max_bytes": 50_000}, "mid"),
        ({"max_bytes": 50_000, "max_latency_ms": 0.9}, "small"),
        ({"min_accuracy": 0.94}, "big"),
        ({"max_bytes": 50_000, "min_accuracy": 0.94}, None),
        ({"max_bytes": 8_000}, "small"),  # tie on accuracy and bytes: the faster one
    ],
)
def test_choose_picks_the_most_accurate_row_inside_the_budget(budget, chosen):
    picked, rejected = choose(ROWS, **budget)
    assert (picked["name"] if picked else None) == chosen
    fitting = {r["name"] for r in ROWS} - set(rejected)
    if chosen is not None:
        assert chosen in fitting
        assert all(picked["accuracy"] >= r["accuracy"] for r in ROWS if r["name"] in fitting)
    else:
        assert not fitting


def test_violations_name_each_broken_limit():
    row = _row("big", 0.95, 90_000, 2.0)
    assert violations(row) == []
    assert violations(row, max_bytes=50_000, max_latency_ms=1.5, min_accuracy=0.99) == [
        "bytes 90,000 > max_bytes 50,000",
        "latency_ms 2 > max_latency_ms 1.5",
        "accuracy 0.95 < min_accuracy 0.99",
    ]


@pytest.mark.parametrize(
    "budget, message",
    [
        ({"max_bytes": -1}, "max_bytes must be >= 0"),
        ({"max_latency_ms": -0.5}, "max_latency_ms must be >= 0"),
        ({"min_accuracy": 1.5}, "min_accuracy must be in \\[0, 1\\]"),
        ({"min_agreement": -0.1}, r"min_agreement must be in \[0, 1\] .*min_agreement=-0.1"),
    ],
)
def test_choose_rejects_bad_limits(budget, message):
    with pytest.raises(ValueError, match=message):
        choose(ROWS, **budget)


def test_a_broken_export_is_never_chosen_and_says_why():
    rows = [{**_row("broken", 0.99, 1_000), "agreement": 0.558}, {**_row("ok", 0.9, 2_000)}]
    rows[1]["agreement"] = 0.995
    picked, rejected = choose(rows)
    assert picked["name"] == "ok"
    assert rejected == {"broken": ["agreement 0.5580 < min_agreement 0.99: broken export"]}
    assert choose(rows, min_agreement=0)[0]["name"] == "broken"  # 0: no check
    assert violations(_row("unknown", 0.9, 1)) == []  # no agreement value: not checked
