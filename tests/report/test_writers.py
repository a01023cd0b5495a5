"""Markdown and HTML reports: the table, the verdict, the figures."""

import base64

import pytest

from keras_kd.report import table_rows, text_table, write_html, write_markdown

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _report(chosen="kd+qat"):
    row = {"agreement": 0.99, "gzip_bytes": 7_000, "latency_ms": 0.0123, "parameters": 5_130}
    row.update(keras_accuracy=0.935, macs=83_264)
    return {
        "title": "pipeline <report>",
        "facts": [("target", "int8")],
        "candidates": [
            {**row, "name": "kd", "accuracy": 0.93, "bytes": 20_000, "sparsity": 0.0},
            {**row, "name": "kd+qat", "accuracy": 0.94, "bytes": 10_500, "sparsity": 0.8},
        ],
        "references": [
            {"name": "teacher", "accuracy": 0.98, "bytes": 60_000, "agreement": None},
            {"name": "big", "keras_accuracy": 0.99, "parameters": 900_000, "error": "over 1 MiB"},
        ],
        "chosen": chosen,
        "rejected": {"kd": ["bytes 20,000 > max_bytes 15,000"]},
        "summary": "Chosen kd+qat: +1.0 pt vs the scratch student.",
        "front": ["kd+qat"],
        "figures": [("Accuracy vs size", "figures/size.png")],
        "notes": ["a note"],
    }


def test_table_rows_format_cells_and_statuses():
    header, rows = table_rows(_report())
    assert header[0] == "candidate" and header[-1] == "status"
    assert rows[0] == [
        "kd",
        "0.9300",
        "0.9350",
        "0.9900",
        "20,000",
        "7,000",
        "0.0123",
        "5,130",
        "83,264",
        "0.00",
        "outside budget: bytes 20,000 > max_bytes 15,000",
    ]
    assert rows[1][-1] == "CHOSEN, Pareto front"
    assert rows[2][0] == "teacher" and rows[2][3] == "-" and rows[2][-1] == "reference"
    # A reference whose export failed keeps its Keras figures.
    assert rows[3][:3] == ["big", "-", "0.9900"] and rows[3][7] == "900,000"
    assert rows[3][-1] == "reference; export failed: over 1 MiB"


def test_table_rows_flag_broken_exports_and_failed_ones_apart_from_the_budget():
    report = _report()
    report["rejected"] = {
        "kd": [
            "bytes 20,000 > max_bytes 15,000",
            "agreement 0.5580 < min_agreement 0.99: broken export",
        ],
        "kd+qat": ["export failed: unsupported op"],
    }
    _, rows = table_rows(report, keys=["name", "agreement"])
    assert rows[0] == [
        "kd",
        "0.9900",
        "BROKEN: agreement 0.5580 < min_agreement 0.99, "
        "outside budget: bytes 20,000 > max_bytes 15,000",
    ]
    assert rows[1][-1] == "CHOSEN, Pareto front, BROKEN: export failed: unsupported op"
    with pytest.raises(ValueError, match=r"keys must be keys of .* received: keys=\['nope'\]"):
        table_rows(report, keys=["nope"])


def test_text_table_aligns_columns_under_a_header():
    lines = text_table(_report(), ["name", "accuracy", "bytes", "macs"])
    assert lines[0].split() == ["candidate", "accuracy", "bytes", "MACs", "status"]
    assert set(lines[1]) == {"-"} and len(lines) == 2 + 4
    assert lines[3].startswith("kd+qat ") and lines[3].endswith("CHOSEN, Pareto front")
    assert len({line.index("0.9") for line in lines[2:5]}) == 1  # accuracy column aligned


@pytest.fixture
def report_dir(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "size.png").write_bytes(PNG)
    return tmp_path


def test_markdown_names_the_chosen_candidate_and_links_figures(report_dir):
    text = open(write_markdown(_report(), str(report_dir / "r.md")), encoding="utf-8").read()
    assert "Chosen candidate: **kd+qat**" in text
    assert "Chosen kd+qat: +1.0 pt vs the scratch student." in text
    assert "| kd+qat | 0.9400 | 0.9350 |" in text
    assert "![Accuracy vs size](figures/size.png)" in text


@pytest.mark.parametrize("embed", [True, False])
def test_html_is_escaped_and_embeds_or_links_figures(report_dir, embed):
    path = write_html(_report(), str(report_dir / "r.html"), embed=embed)
    text = open(path, encoding="utf-8").read()
    assert "pipeline &lt;report&gt;" in text and "<report>" not in text
    assert '<tr class="chosen"><td>kd+qat</td>' in text
    expected = (
        "data:image/png;base64," + base64.b64encode(PNG).decode()
        if embed
        else ('src="figures/size.png"')
    )
    assert expected in text


@pytest.mark.parametrize("writer", [write_markdown, write_html])
def test_reports_say_clearly_when_no_candidate_fits(report_dir, writer):
    text = open(writer(_report(chosen=None), str(report_dir / "r.txt")), encoding="utf-8").read()
    assert "No candidate fits the budget." in text
    assert "CHOSEN" not in text
