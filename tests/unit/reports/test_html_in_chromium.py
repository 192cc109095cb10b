"""The HTML report opens in a real browser (headless Chromium, no network): the charts are drawn, names stay text.

CI installs Debian's ``chromium``; without it these tests fail (they do not skip), so a missing browser is noticed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from costbrake.reports.charts import (
    BUDGET_COLOR,
    FEATURE_COLORS,
    PROJECTED_FILL,
    PROJECTION_COLOR,
    TOTAL_COLOR,
    USER_COLOR,
)
from costbrake.reports.html import render_html
from costbrake.reports.model import build_report
from PIL import Image, ImageColor

WIDTH, HEIGHT = 1280, 2400
BROWSER_TIMEOUT = 60


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("headless Chromium is needed to check the HTML report: install it with `apt-get install chromium`")
    return path


@pytest.fixture
def report_page(hostile_week, tmp_path: Path) -> Path:
    page = tmp_path / "report.html"
    page.write_text(render_html(build_report(hostile_week)), encoding="utf-8")
    return page


def run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium,
        "--headless",
        "--no-sandbox",  # CI containers run as root
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--force-color-profile=srgb",  # exact chart colours in the screenshot
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT, check=True)


def pixels_by_colour(png: Path) -> Counter[tuple[int, int, int]]:
    with Image.open(png) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (WIDTH, HEIGHT)
        return Counter({colour: n for n, colour in rgb.getcolors(WIDTH * HEIGHT) or []})


def test_given_a_report_when_chromium_screenshots_it_then_every_chart_is_drawn(chromium, report_page, tmp_path):
    png = tmp_path / "report.png"

    run_chromium(
        chromium,
        tmp_path / "profile",
        "--hide-scrollbars",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--screenshot={png}",
        report_page.as_uri(),
    )

    pixels = pixels_by_colour(png)
    drawn = {
        "cost bars": (TOTAL_COLOR, 20_000),
        "budget line": (BUDGET_COLOR, 1_000),
        "run-rate line": (PROJECTION_COLOR, 1_000),
        "projected budget": (PROJECTED_FILL, 5_000),
        "top-user bars": (USER_COLOR, 5_000),
        "second feature's stack": (FEATURE_COLORS[1], 500),
    }
    for what, (colour, at_least) in drawn.items():
        assert pixels[ImageColor.getrgb(colour)] >= at_least, f"{what} ({colour}) not drawn"
    white = pixels[(255, 255, 255)]
    assert white < 0.97 * WIDTH * HEIGHT  # not a blank page (a report is mostly white)
    assert len(pixels) > 100  # text, anti-aliased edges: a rendered page, not a few flat rectangles


def test_given_a_report_when_chromium_parses_it_then_the_svg_survives_and_names_stay_text(
    chromium, report_page, tmp_path
):
    dom = run_chromium(chromium, tmp_path / "profile", "--dump-dom", report_page.as_uri()).stdout

    page = report_page.read_text(encoding="utf-8")
    assert dom.count("<svg") == 4
    for element in ("<rect ", "<line ", "<text ", "<title>"):  # the browser kept every element of the charts
        assert dom.count(element) == page.count(element) > 10, element
    assert len(re.findall(r'<line class="rule"', dom)) == 2  # budget per day and run rate
    assert "<script" not in dom and "<img" not in dom  # the hostile names were parsed as text...
    assert "&lt;script&gt;alert('feature')&lt;/script&gt;" in dom  # ...and are still there to read
