"""Renders an HTML report in headless Chromium to a PNG screenshot (a check that a browser shows it)."""

import os
import shutil
import subprocess
import tempfile

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium():
    """The path of a Chromium or Chrome executable on ``PATH``, or ``None``.

    Returns:
        The executable's path, or ``None`` when none of ``CHROMIUM_NAMES`` is on ``PATH``.

    Example:
        >>> find_chromium()
        '/usr/bin/chromium'
    """
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(html_path, png_path, width=1280, height=2400, chromium=None, timeout=120):
    """Renders ``html_path`` in headless Chromium and writes a PNG of the page.

    Runs ``chromium --headless --no-sandbox --disable-gpu --screenshot=<png>
    --window-size=<width>,<height> file://<html>`` in a throwaway profile directory.

    Args:
        html_path: The HTML file to render.
        png_path: Where to write the screenshot.
        width: Window width in pixels (> 0).
        height: Window height in pixels (> 0): the screenshot covers this much of the page.
        chromium: The browser executable; ``None`` looks one up with ``find_chromium``.
        timeout: Seconds before the browser is killed.

    Returns:
        ``png_path``.

    Raises:
        ValueError: If ``html_path`` does not exist or a size is not positive.
        FileNotFoundError: If no browser is found.
        RuntimeError: If the browser fails or writes no screenshot (its stderr is included).

    Example:
        >>> screenshot("out/report.html", "out/report.png")
        'out/report.png'
    """
    if not os.path.isfile(html_path):
        raise ValueError(f"html_path must be an existing file, received: html_path={html_path!r}")
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, received: {name}={value!r}")
    chromium = chromium or find_chromium()
    if chromium is None or not os.path.exists(chromium):
        raise FileNotFoundError(
            f"no Chromium found (looked for {list(CHROMIUM_NAMES)} on PATH); install it, e.g. "
            "apt-get install chromium"
        )
    png_path = os.path.abspath(png_path)
    if os.path.exists(png_path):
        os.remove(png_path)
    with tempfile.TemporaryDirectory(prefix="keras_kd_chromium_") as profile:
        done = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--screenshot={png_path}",
                f"--window-size={width},{height}",
                "file://" + os.path.abspath(html_path),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if done.returncode != 0 or not os.path.isfile(png_path):
        raise RuntimeError(
            f"{chromium} wrote no screenshot (status {done.returncode}): {done.stderr[-2000:]}"
        )
    return png_path
