"""Markdown and HTML reports: the table, the verdict, the figures."""

import base64

import pytest

from keras_kd.report import table_rows, write_html, write_markdown

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _report(chosen="kd+qat"):
    row = {"agreement": 0.99, "gzip_bytes": 7_000, "latency_ms": 0.0123, "parameters": 5_130}
    return {
        "title": "pipeline <report>",
        "facts": [("target", "int8")],
        "candidates": [
            {**row, "name": "kd", "accuracy": 0.93, "bytes": 20_000, "sparsity": 0.0},
            {**row, "name": "kd+qat", "accuracy": 0.94, "bytes": 10_500, "sparsity": 0.8},
        ],
        "references": [{"name": "teacher", "accuracy": 0.98, "bytes": 60_000, "agreement": None}],
        "chosen": chosen,
        "rejected": {"kd": ["bytes 20,000 > max_bytes 15,000"]},
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
        "0.9900",
        "20,000",
        "7,000",
        "0.0123",
        "5,130",
        "0.00",
        "outside budget: bytes 20,000 > max_bytes 15,000",
    ]
    assert rows[1][-1] == "CHOSEN, Pareto front"
    assert rows[2][0] == "teacher" and rows[2][2] == "-" and rows[2][-1] == "reference"


@pytest.fixture
def report_dir(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "size.png").write_bytes(PNG)
    return tmp_path


def test_markdown_names_the_chosen_candidate_and_links_figures(report_dir):
    text = open(write_markdown(_report(), str(report_dir / "r.md")), encoding="utf-8").read()
    assert "Chosen candidate: **kd+qat**" in text
    assert "| kd+qat | 0.9400 |" in text
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
