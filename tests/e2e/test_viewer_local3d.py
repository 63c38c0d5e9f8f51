"""3D in the browser: a real viewer, a headless Chromium with WebGL2 (SwiftShader, on the CPU) and
one with WebGL switched off. The browser with WebGL2 gets local 3D chosen for it (this server has no GPU),
its canvas shows the volume and turns with a drag; switching back gives the server's rendering;
the browser without WebGL keeps server rendering."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from slicer_cloud.core.phantom import make_phantom, write_nrrd
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, start_service

pytestmark = pytest.mark.e2e

VIEW_IMAGES = "img.image-display-area"
THREE_D = 1  # the 3D view's index in the default layout
LOCAL_CANVAS = "#sc-local-3d canvas"
#: WebGL2 without a GPU: Chromium's SwiftShader, asked for explicitly
WEBGL_ARGS = [*CHROMIUM_ARGS, "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
#: a browser that cannot render 3D at all (WebGL off)
NO_WEBGL_ARGS = [*CHROMIUM_ARGS, "--disable-3d-apis"]


@pytest.fixture(scope="module")
def webgl_browser(browser):
    # from the suite's Playwright (one per thread): a second Chromium, with WebGL2
    chromium = browser.browser_type.launch(executable_path=CHROMIUM, args=WEBGL_ARGS, headless=True)
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def no_webgl_browser(browser):
    chromium = browser.browser_type.launch(executable_path=CHROMIUM, args=NO_WEBGL_ARGS, headless=True)
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def viewer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("local3d-data")
    phantom = make_phantom(shape=(96, 96, 48), spacing=(3.0, 3.0, 6.0))
    write_nrrd(folder / "ct.nrrd", phantom.array, phantom.spacing, phantom.origin)
    service = start_service(
        ["view", "--data", str(folder), "--port", "0", "--no-open"],
        cwd=folder,
        log_path=folder / "viewer.log",
        env={"SLICER_CLOUD_SPARE_SESSIONS": "0"},
    )
    yield service
    service.stop()


def pixels(locator) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("L"), dtype=np.int16)


def wait_until(check, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value is not None:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout:.0f} s")


def shows_a_volume(image: np.ndarray) -> bool:
    """Something bright in the middle third, black corners (the volume on a black background)."""
    h, w = image.shape
    centre = image[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    return (centre > 60).sum() > 200 and image[:8, :8].mean() < 30 and image[-8:, -8:].mean() < 30


def served_volume(image: np.ndarray, before: np.ndarray) -> bool:
    """The server's 3D view: Slicer's background is a smooth vertical gradient (rows nearly flat),
    a rendered volume puts structure across the rows and differs from the view before."""
    h, w = image.shape
    centre = image[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    changed = image.shape != before.shape or (np.abs(image - before) > 30).sum() > 500
    return changed and float(centre.std(axis=1).mean()) > 8


def shown(locator) -> np.ndarray | None:
    image = pixels(locator)
    return image if image.std() > 5 else None


def volume_image(locator) -> np.ndarray | None:
    image = pixels(locator)
    return image if shows_a_volume(image) else None


def open_viewer(browser, url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(url + "&open=ct.nrrd", timeout=180_000)
    page.wait_for_selector(VIEW_IMAGES)
    wait_until(lambda: page.locator("#sc-volume-name").inner_text() == "ct.nrrd" or None, "the volume never opened")
    return context, page


def test_webgl2_browser_renders_3d_itself_and_can_switch_back(webgl_browser, viewer):
    context, page = open_viewer(webgl_browser, viewer.url)
    try:
        assert page.evaluate("window.slicerCloud.hasWebGL2()") is True
        # chosen automatically: WebGL2 here, no GPU on the server
        switch = page.locator("#sc-local-3d-switch")  # Vuetify puts the id on the input
        wait_until(lambda: switch.is_checked() or None, "local 3D was not chosen automatically")

        served = page.locator(VIEW_IMAGES).nth(THREE_D)
        before = wait_until(lambda: shown(served), "the 3D view never showed")  # rendering off: slice planes
        page.locator("#sc-vr-switch").click()
        canvas = page.locator(LOCAL_CANVAS)
        canvas.wait_for()
        first = wait_until(lambda: volume_image(canvas), "the browser's canvas never showed the volume")

        # A drag turns the volume in the browser.
        box = canvas.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        for step in range(1, 11):
            page.mouse.move(x + step * 12, y)
        page.mouse.up()
        wait_until(
            lambda: (np.abs(pixels(canvas) - first) > 30).sum() > 500 or None, "the local view did not turn on a drag"
        )

        # Back to server rendering: the overlay goes, the streamed 3D view shows the volume.
        page.locator("#sc-local-3d-switch").click()
        page.locator("#sc-local-3d").wait_for(state="detached")
        wait_until(lambda: served_volume(pixels(served), before) or None, "the server's 3D view never showed the volume")
        assert "local 3D: sent a copy" in viewer.log()

        # And local again: the browser's copy comes back.
        page.locator("#sc-local-3d-switch").click()
        canvas.wait_for()
        wait_until(lambda: shows_a_volume(pixels(canvas)) or None, "local 3D did not come back")
    finally:
        context.close()


def test_browser_without_webgl_keeps_server_rendering(no_webgl_browser, viewer):
    context, page = open_viewer(no_webgl_browser, viewer.url)
    try:
        assert page.evaluate("window.slicerCloud.hasWebGL2()") is False
        assert not page.locator("#sc-local-3d-switch").is_visible()
        served = page.locator(VIEW_IMAGES).nth(THREE_D)
        before = wait_until(lambda: shown(served), "the 3D view never showed")
        page.locator("#sc-vr-switch").click()
        wait_until(lambda: served_volume(pixels(served), before) or None, "the server's 3D view never showed the volume")
        assert page.locator("#sc-local-3d").count() == 0
    finally:
        context.close()
