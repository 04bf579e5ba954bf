"""The HTML report as a browser shows it: headless Chromium draws the verdict box and the plots.

Chromium is installed by `.ci/run`; a missing browser fails this test rather than skipping it.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

from PIL import Image

from evaluators.rendering.render import render_html
from tests.report_factory import make_report

WIDTH, HEIGHT = 1280, 4000
NEEDS_REVIEW_BACKGROUND = (0xFF, 0xF8, 0xC5)  # .verdict.needs_review in report.html.j2
CANDIDATE_BLUE = (0x1F, 0x77, 0xB4)  # plots.py: the candidate's colour
REGRESSED_RED = (0xD6, 0x27, 0x28)


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("headless Chromium is required: apt-get install -y chromium")


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=True))


def _count(image: Image.Image, colour: tuple[int, int, int]) -> int:
    colours = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
    return sum(count for count, pixel in colours if _near(pixel, colour))


def test_the_browser_shows_the_verdict_box_and_every_plot(tmp_path: Path) -> None:
    html = render_html(make_report())
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")

    # Each embedded plot is a real, non-blank picture: a sized SVG with drawn paths (text is
    # drawn as paths too) in the plot's colours.
    uris = [part.split('"', 1)[0] for part in html.split('src="data:image/svg+xml;base64,')[1:]]
    assert len(uris) == 3  # segments, reliability, latency
    for uri in uris:
        svg = ElementTree.fromstring(base64.b64decode(uri))  # noqa: S314  (our own drawing)
        size = [float(svg.get(side, "0").removesuffix("pt")) for side in ("width", "height")]
        assert min(size) > 100
        paths = svg.findall(".//{http://www.w3.org/2000/svg}path")
        assert len(paths) > 20
        assert any(
            colour in ElementTree.tostring(svg).decode()
            for colour in ("#1f77b4", "#d62728", "#2ca02c")
        )

    shot = tmp_path / "report.png"
    subprocess.run(
        [
            _browser(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={WIDTH},{HEIGHT}",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    image = Image.open(shot)
    assert image.size == (WIDTH, HEIGHT)
    assert _count(image, NEEDS_REVIEW_BACKGROUND) > 20_000  # the verdict box is drawn
    assert _count(image, CANDIDATE_BLUE) > 500  # the reliability and latency plots are drawn
    assert _count(image, REGRESSED_RED) > 50  # the regressed segment and its dot
