"""Markdown and self-contained HTML reports of a set of candidate models.

A report is a plain dict (JSON-friendly), so that scripts can also dump it as JSON:

- ``title``: the heading.
- ``facts``: ``[(label, value)]`` shown under the title (dataset, target, budget, ...).
- ``candidates`` and ``references``: rows with ``name``, ``accuracy`` (of the exported file),
  ``keras_accuracy``, ``agreement``, ``bytes``, ``gzip_bytes``, ``latency_ms``, ``parameters``,
  ``macs``, ``sparsity`` (``None`` or absent where unknown), and ``error`` when the export failed.
- ``chosen``: the chosen candidate's name, or ``None`` when none fits the budget.
- ``rejected``: ``{name: [budget violations]}`` (see ``keras_kd.report.pareto.choose``).
- ``front``: names of the Pareto-optimal candidates.
- ``figures``: ``[(caption, png_path)]`` or ``[(caption, png_path, wide)]``, paths relative to the
  report's directory; a wide figure takes the page's full width in HTML.
- ``summary``: optional; one sentence shown under the verdict (e.g. the chosen candidate against
  the references).
- ``notes``: free sentences shown at the end.
"""

import base64
import html
import os

COLUMNS = (
    ("name", "candidate"),
    ("accuracy", "accuracy"),
    ("keras_accuracy", "Keras accuracy"),
    ("agreement", "agreement"),
    ("bytes", "bytes"),
    ("gzip_bytes", "gzip bytes"),
    ("latency_ms", "latency ms"),
    ("parameters", "parameters"),
    ("macs", "MACs"),
    ("sparsity", "sparsity"),
)
_TITLES = dict(COLUMNS)


def _cell(key, value):
    if value is None:
        return "-"
    if key in ("accuracy", "keras_accuracy", "agreement"):
        return f"{value:.4f}"
    if key in ("bytes", "gzip_bytes", "parameters", "macs"):
        return f"{int(value):,}"
    if key == "latency_ms":
        return f"{value:.4g}"
    if key == "sparsity":
        return f"{value:.2f}"
    return str(value)


def table_rows(report, keys=None):
    """The candidate table as strings: ``(header, rows)``, each row a list of cells.

    Candidates come first, then references; the last column says whether a candidate is the
    chosen one, on the Pareto front, outside the budget (with the reasons), a broken export (its
    file disagrees with its Keras model), one whose export failed, or a reference.

    Args:
        report: A report dict (see the module docstring).
        keys: Row keys of the columns to show, in order; ``None`` shows every key of ``COLUMNS``.

    Returns:
        ``(header, rows)``: a list of column titles and a list of rows of cell strings.

    Raises:
        ValueError: If a key is not one of ``COLUMNS``.

    Example:
        >>> header, rows = table_rows(report)
    """
    keys = [k for k, _ in COLUMNS] if keys is None else list(keys)
    unknown = [k for k in keys if k not in _TITLES]
    if unknown:
        raise ValueError(f"keys must be keys of {list(_TITLES)}, received: keys={keys!r}")
    header = [_TITLES[k] for k in keys] + ["status"]
    rows = []
    front = set(report.get("front", ()))
    rejected = report.get("rejected", {})
    for row in report["candidates"]:
        status = []
        if row["name"] == report.get("chosen"):
            status.append("CHOSEN")
        if row["name"] in front:
            status.append("Pareto front")
        reasons = rejected.get(row["name"], [])
        broken = [r for r in reasons if r.endswith("broken export") or r.startswith("export fail")]
        if broken:
            status.append("BROKEN: " + "; ".join(r.replace(": broken export", "") for r in broken))
        if len(broken) < len(reasons):
            outside = [r for r in reasons if r not in broken]
            status.append("outside budget: " + "; ".join(outside))
        rows.append([_cell(k, row.get(k)) for k in keys] + [", ".join(status) or "-"])
    for row in report.get("references", ()):
        status = "reference"
        if row.get("error"):
            status += "; export failed: " + " ".join(row["error"].split())
        rows.append([_cell(k, row.get(k)) for k in keys] + [status])
    return header, rows


def text_table(report, keys=None):
    """The candidate table as aligned plain-text lines, for a terminal.

    Args:
        report: A report dict (see the module docstring).
        keys: Row keys of the columns (see ``table_rows``); ``None`` shows every column.

    Returns:
        A list of strings: the header, a rule, then one line per row; long statuses are cut at
        60 characters.

    Example:
        >>> print("\n".join(text_table(report, ["name", "accuracy", "bytes"])))
    """
    header, rows = table_rows(report, keys)
    rows = [row[:-1] + [row[-1] if len(row[-1]) <= 60 else row[-1][:57] + "..."] for row in rows]
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]

    def line(cells):
        first = [cells[0].ljust(widths[0])]
        middle = [c.rjust(w) for c, w in zip(cells[1:-1], widths[1:-1], strict=True)]
        return "  ".join(first + middle + [cells[-1]]).rstrip()

    return [line(header), "-" * len(line(header)), *(line(row) for row in rows)]


def _verdict(report):
    if report.get("chosen"):
        return f"Chosen candidate: **{report['chosen']}** (the most accurate inside the budget)."
    return (
        "**No candidate fits the budget.** Every candidate breaks at least one limit (see the "
        "status column); relax the budget or add smaller candidates."
    )


def write_markdown(report, path):
    """Writes the report as markdown (figures linked by their relative paths).

    Args:
        report: A report dict (see the module docstring).
        path: The .md file to write.

    Returns:
        ``path``.

    Example:
        >>> write_markdown(report, "out/report.md")
        'out/report.md'
    """
    lines = [f"# {report['title']}", ""]
    lines += [f"- {label}: {value}" for label, value in report.get("facts", ())]
    lines += ["", _verdict(report), ""]
    if report.get("summary"):
        lines += [report["summary"], ""]
    lines += ["## Candidates", ""]
    header, rows = table_rows(report)
    lines.append("| " + " | ".join(header) + " |")
    lines.append("| " + " | ".join("---" for _ in header) + " |")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if report.get("figures"):
        lines += ["", "## Figures", ""]
        for caption, figure, *_ in report["figures"]:
            lines += [f"![{caption}]({figure})", "", f"*{caption}*", ""]
    if report.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {note}" for note in report["notes"]]
    _write_text(path, "\n".join(lines) + "\n")
    return path


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto;
       max-width: 1200px; color: #222; line-height: 1.4; }
h1 { font-size: 26px; margin-bottom: 4px; }
.facts { color: #444; font-size: 14px; }
.verdict { font-size: 18px; padding: 10px 14px; border-radius: 6px; margin: 14px 0; }
.fits { background: #e6f4ea; border: 1px solid #2ca02c; }
.none { background: #fdecea; border: 1px solid #d62728; }
table { border-collapse: collapse; font-size: 14px; margin: 8px 0 20px; width: 100%; }
th, td { border: 1px solid #ccc; padding: 5px 8px; text-align: right; }
th { background: #f2f2f2; }
td:first-child, td:last-child, th:first-child, th:last-child { text-align: left; }
tr.chosen td { background: #e6f4ea; font-weight: 600; }
tr.reference td { color: #666; font-style: italic; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; flex: 0 1 calc(50% - 8px); max-width: calc(50% - 8px); }
figure.wide { flex-basis: 100%; max-width: 100%; }
figure img { width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 13px; color: #555; }
"""


def write_html(report, path, embed=True):
    """Writes the report as one HTML page that needs nothing but itself (and, without ``embed``,
    the PNGs next to it).

    Args:
        report: A report dict (see the module docstring); figure paths are relative to ``path``.
        path: The .html file to write.
        embed: Embed the PNGs as base64 data URIs (one file to mail or attach); ``False`` links
            them by their relative paths.

    Returns:
        ``path``.

    Example:
        >>> write_html(report, "out/report.html")
        'out/report.html'
    """
    directory = os.path.dirname(os.path.abspath(path))
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(report['title'])}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{esc(report['title'])}</h1>",
        '<div class="facts">'
        + " &middot; ".join(
            f"{esc(str(label))}: <b>{esc(str(value))}</b>"
            for label, value in report.get("facts", ())
        )
        + "</div>",
    ]
    verdict = _verdict(report).replace("**", "")
    css = "fits" if report.get("chosen") else "none"
    parts.append(f'<div class="verdict {css}">{esc(verdict)}</div>')
    if report.get("summary"):
        parts.append(f'<p class="summary">{esc(report["summary"])}</p>')
    header, rows = table_rows(report)
    parts.append("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
    parts.append("</thead><tbody>")
    for row in rows:
        css = "chosen" if row[-1].startswith("CHOSEN") else ""
        css = "reference" if row[-1] == "reference" else css
        cells = "".join(f"<td>{esc(cell)}</td>" for cell in row)
        parts.append(f'<tr class="{css}">{cells}</tr>')
    parts.append("</tbody></table>")
    if report.get("figures"):
        parts.append('<div class="figures">')
        for caption, figure, *wide in report["figures"]:
            source = esc(figure)
            if embed:
                with open(os.path.join(directory, figure), "rb") as f:
                    source = "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")
            css = ' class="wide"' if wide and wide[0] else ""
            parts.append(
                f'<figure{css}><img src="{source}" alt="{esc(caption)}">'
                f"<figcaption>{esc(caption)}</figcaption></figure>"
            )
        parts.append("</div>")
    if report.get("notes"):
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li>{esc(note)}</li>" for note in report["notes"]]
        parts.append("</ul>")
    parts.append("</body></html>")
    _write_text(path, "\n".join(parts) + "\n")
    return path


def _write_text(path, text):
    """Writes atomically: a temporary file in the same directory, then os.replace."""
    temp = f"{path}.tmp{os.getpid()}"
    with open(temp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temp, path)
