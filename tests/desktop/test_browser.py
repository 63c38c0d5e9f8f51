"""End to end in real headless Chromium: the page connects, the fallback viewer is on the remote
screen, keys reach it, the clipboard works both ways, and the page reconnects after a drop."""

from __future__ import annotations

import io
import subprocess
import time

import numpy as np
import pytest
from PIL import Image

from slicer_cloud.desktop.fallback_viewer import BAND_RGB

pytestmark = pytest.mark.e2e

WAIT_S = 45


def canvas_pixels(page) -> np.ndarray:
    png = page.locator("#screen canvas").screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def band_box(pixels: np.ndarray, tolerance: int = 40) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of the fallback viewer's magenta band, if it is on screen."""
    close = (np.abs(pixels - np.array(BAND_RGB)).max(axis=2) <= tolerance)
    if close.sum() < 5000:  # the band is 900 x 56 pixels; a stray pixel is not it
        return None
    ys, xs = np.nonzero(close)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def wait_for(predicate, what: str, timeout_s: float = WAIT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def page(desktop, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(desktop.url)
    page.wait_for_selector("body[data-state=connected]", timeout=WAIT_S * 1000)
    yield page
    context.close()


def test_page_shows_the_program_window(page):
    box = wait_for(lambda: band_box(canvas_pixels(page)), "the fallback viewer's band on the remote screen")
    x0, y0, x1, y1 = box
    assert x1 - x0 > 400 and y1 - y0 > 20
    # Slicer is not installed here: the page says so.
    banner = page.locator("#banner")
    assert banner.is_visible()
    assert "not installed" in banner.inner_text()


def test_keys_reach_the_program(page):
    x0, y0, x1, y1 = wait_for(lambda: band_box(canvas_pixels(page)), "the band")
    page.locator("#screen canvas").click(position={"x": (x0 + x1) // 2, "y": (y0 + y1) // 2})  # focus the viewer
    # The slice view sits under the band's left half.
    slice_region = (slice(y1 + 5, y1 + 400), slice(x0 + 5, (x0 + x1) // 2 - 5))
    before = canvas_pixels(page)[slice_region]
    for _ in range(3):
        page.keyboard.press("PageUp")  # ten slices up each

    def changed() -> bool:
        now = canvas_pixels(page)[slice_region]
        return int((np.abs(now - before).max(axis=2) > 30).sum()) > 500

    wait_for(changed, "the slice view to change after key presses")


def test_clipboard_from_the_desktop_to_the_page(page, desktop):
    text = "copied on the remote desktop 42"
    # xclip -quiet stays in the foreground, serving the selection, so we hold its PID.
    owner = subprocess.Popen(
        ["xclip", "-quiet", "-selection", "clipboard", "-i"], stdin=subprocess.PIPE, env=desktop.x_env(), text=True
    )
    try:
        owner.stdin.write(text)
        owner.stdin.close()
        wait_for(lambda: page.locator("#clipboard-text").input_value() == text, "the remote clipboard in the page")
    finally:
        owner.kill()
        owner.wait(timeout=10)


def test_clipboard_from_the_page_to_the_desktop(page, desktop):
    text = "pasted from the browser 7"
    if page.locator("#clipboard-panel").is_hidden():
        page.click("#clipboard-toggle")
    page.fill("#clipboard-text", text)
    page.click("#clipboard-send")

    def remote_clipboard() -> bool:
        result = subprocess.run(
            ["xclip", "-o", "-selection", "clipboard"], env=desktop.x_env(), capture_output=True, text=True, timeout=10
        )
        return result.stdout == text

    wait_for(remote_clipboard, "the page's text in the remote clipboard")


def test_page_reconnects_after_a_drop(page, desktop):
    before = int(page.locator("body").get_attribute("data-connects"))
    # Xvnc drops every VNC client, as a network failure would.
    subprocess.run(["vncconfig", "-disconnect"], env=desktop.x_env(), check=True, timeout=20)
    wait_for(lambda: int(page.locator("body").get_attribute("data-connects")) > before, "the page to reconnect")
    page.wait_for_selector("body[data-state=connected]", timeout=WAIT_S * 1000)
    wait_for(lambda: band_box(canvas_pixels(page)), "the band after reconnecting")


def test_remote_screen_follows_the_browser_window(page):
    size_js = """() => {
        const canvas = document.querySelector('#screen canvas');
        const screen = document.getElementById('screen');
        return [canvas.width, canvas.height, screen.clientWidth, screen.clientHeight];
    }"""

    def fits() -> bool:
        width, height, box_width, box_height = page.evaluate(size_js)
        # within a pixel or two: the page's box can have a fractional height
        return abs(width - box_width) <= 2 and abs(height - box_height) <= 2

    # Started at 1280x720; the page asked for its own size, and asks again on every resize.
    wait_for(fits, "the remote screen to match the page")
    page.set_viewport_size({"width": 1024, "height": 700})
    wait_for(lambda: fits() and page.evaluate(size_js)[0] == 1024, "the remote screen to follow a smaller window")
    page.set_viewport_size({"width": 1280, "height": 800})
    wait_for(lambda: fits() and page.evaluate(size_js)[0] == 1280, "the remote screen to grow back")
