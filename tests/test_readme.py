"""Runs every ```python block of README.md, in order, as one program, so that a stale snippet fails.

The blocks share one namespace, as a reader pasting them into one session would: later blocks use the
models and data of earlier ones. The program runs in its own process (forked before TensorFlow
computes anything, ``tests/forked_script_runs.py``) whose working directory is a temporary directory
(every file the snippets write lands there) and whose ``sys.path`` holds the repository root (for
``examples.models``). It keeps README.md's line numbers, so a traceback points
at the README line that failed.

A block the suite must not run (for example one that needs a file of the user's) is marked by the
line ``<!-- readme-test: skip -->`` right before its opening fence; it is invisible in the rendered
README. Use it sparingly: prefer a small setup in an earlier block.
"""

import os
import re
import time

import pytest

from tests.forked_script_runs import run_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
SKIP = "<!-- readme-test: skip -->"
TIMEOUT = 900  # a hang, not a slow machine: the program takes under a minute on 2 idle cores
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def readme_program(text):
    """Returns (program, blocks): README's runnable python blocks at their own line numbers.

    Args:
        text: The content of README.md.

    Returns:
        ``program``: the README with every line outside a runnable block blanked, and ``blocks``:
        the number of runnable blocks. Blocks marked with the skip comment are blanked too.
    """
    lines = [""] * (text.count("\n") + 1)
    blocks = 0
    for match in _BLOCK.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        if before == SKIP:
            continue
        first = text[: match.start(1)].count("\n")
        for offset, line in enumerate(match.group(1).splitlines()):
            lines[first + offset] = line
        blocks += 1
    return "\n".join(lines) + "\n", blocks


def test_program_keeps_readme_line_numbers_and_honours_the_skip_mark():
    text = "intro\n```python\na = 1\n```\n\n" + SKIP + "\n```python\nraise SystemExit\n```\n"
    text += "```bash\nls\n```\n```python\nb = a\n```\n"
    program, blocks = readme_program(text)
    assert blocks == 2
    assert program.splitlines()[2] == "a = 1" and program.splitlines()[13] == "b = a"
    assert "SystemExit" not in program and "ls" not in program


def test_readme_python_blocks_run_in_order_as_one_program(tmp_path):
    with open(README, encoding="utf-8") as f:
        program, blocks = readme_program(f.read())
    assert blocks >= 10, "README.md lost its python blocks, or the pattern no longer finds them"
    script = tmp_path / "readme_blocks.py"  # line N is README.md's line N
    script.write_text(program, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    start = time.monotonic()
    try:
        done = run_script(
            {"code": program, "filename": str(script)},
            env={"TF_CPP_MIN_LOG_LEVEL": "3"},
            cwd=work,
            timeout=TIMEOUT,
        )
    except TimeoutError:
        pytest.fail(f"README blocks still running after {TIMEOUT} s")
    assert done.returncode == 0, (
        "a README.md block failed (line numbers are README's):\n" + (done.stderr[-4000:])
    )
    print(f"{blocks} README blocks ran in {time.monotonic() - start:.1f} s")


def test_readme_parameter_counts_are_the_example_models():
    """Results quote the benchmark's teacher (width 64) and the student on 28x28 Fashion-MNIST."""
    from examples.models import make_student, make_teacher

    with open(README, encoding="utf-8") as f:
        text = " ".join(f.read().split())
    teacher = make_teacher((28, 28, 1), 10, width=64).count_params()
    student = make_student((28, 28, 1), 10).count_params()
    assert (teacher, student) == (878_730, 5_130)
    assert f"5,130 parameters against the teacher's {teacher:,} at width 64" in text
