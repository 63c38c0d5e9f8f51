"""The viewer benchmark's definition of a correct first slice, checked in a real Chromium, and its
table. (The whole benchmark, even with --quick, takes minutes: it is not run in the suite.)"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from benchmarks.viewer import VIEWERS, Results, Volume, build_table
from benchmarks.viewer_page import INIT_JS, VIEWS

pytestmark = pytest.mark.e2e


def slice_png(width: int, height: int, *, centre: tuple[float, float], radii: tuple[float, float]) -> str:
    """A dark view with a grey elliptical 'body' (lungs and all are irrelevant to the judge)."""
    y, x = np.mgrid[0:height, 0:width]
    body = ((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 <= 1.0
    pixels = np.where(body, 110, 3).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").convert("RGB").save(buffer, format="JPEG", quality=50)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


CASES = {
    # name: (png, expected verdict)
    "fitted": (slice_png(468, 394, centre=(234, 197), radii=(170, 140)), "correct"),
    "blank": (slice_png(468, 394, centre=(234, 197), radii=(0.1, 0.1)), "blank"),
    "over-zoomed": (slice_png(618, 774, centre=(309, 387), radii=(420, 300)), "cut off (over-zoomed)"),
    "tiny": (slice_png(618, 774, centre=(309, 387), radii=(120, 100)), "too small"),
}


@pytest.fixture
def bench_page(browser):
    context = browser.new_context()
    context.add_init_script(INIT_JS)
    page = context.new_page()
    page.goto("about:blank")
    page.set_content('<img class="image-display-area"><img class="image-display-area">')
    yield page
    context.close()


@pytest.mark.parametrize("name", list(CASES))
def test_judge_tells_a_fitted_slice_from_blank_cut_off_and_tiny_ones(bench_page, name):
    png, expected = CASES[name]
    verdict = bench_page.evaluate(
        """async ([sel, src]) => {
            const img = document.querySelector(sel);
            img.src = src;
            await img.decode();
            return window.__bench.judge(img);
        }""",
        [VIEWS, png],
    )
    assert verdict["why"] == expected
    assert verdict["ok"] is (expected == "correct")


def test_frames_are_counted_per_view_and_the_first_correct_axial_image_is_kept(bench_page):
    fitted, _ = CASES["fitted"]
    blank, _ = CASES["blank"]
    bench_page.evaluate(
        """([sel, a, b]) => {
            const [axial, other] = document.querySelectorAll(sel);
            axial.src = b;      // blank first
            other.src = a;      // another view's frame: counted, never judged as axial
            axial.src = a + '#2';
        }""",
        [VIEWS, fitted, blank],
    )
    bench_page.wait_for_function("() => window.__bench.first", timeout=10_000)
    frames = bench_page.evaluate("() => window.__bench.frames.map(f => f.i)")
    assert sorted(frames) == [0, 0, 1]
    first = bench_page.evaluate("() => window.__bench.first")
    assert first["ok"] and first["fit"] > 0.6


def test_table_has_both_viewers_and_says_what_is_missing(tmp_path):
    results = Results()
    big = Volume("ct512", "512x512x300", tmp_path / "ct512.nrrd")
    results.add("served:empty", VIEWERS[0], 3.0)
    results.add("served:empty", VIEWERS[1], 5.0)
    results.add("served:empty", VIEWERS[1], 7.0)
    results.add("correct:ct512", VIEWERS[1], 2.5)
    results.note("correct:ct512", VIEWERS[0], "none within 30 s (cut off (over-zoomed))")
    table = build_table(results, [big], big)
    assert "| trame-slicer medical-viewer | slicer-cloud view |" in table
    assert "| server start to page served, empty | 3.0 s | 6.0 s |" in table
    assert "n/a — none within 30 s" in table
