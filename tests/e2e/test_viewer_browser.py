"""The web viewer end to end: a real ``slicer-cloud view`` process and a real headless Chromium."""

from __future__ import annotations

import io
import struct
import time
from pathlib import Path
from urllib.parse import urljoin

import numpy as np
import pytest
from PIL import Image

from slicer_cloud.core.phantom import make_phantom, write_dicom_series, write_nrrd
from tests.conftest import start_service

pytestmark = pytest.mark.e2e

VIEW_IMAGES = "img.image-display-area"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("viewer-data")
    phantom = make_phantom(shape=(128, 128, 64), spacing=(2.0, 2.0, 4.0))
    write_nrrd(folder / "ct.nrrd", phantom.array, phantom.spacing, phantom.origin)
    good = (folder / "ct.nrrd").read_bytes()
    (folder / "broken").mkdir()
    # a raw NRRD cut short: the header promises more voxels than the file holds
    write_nrrd(folder / "raw.nrrd", phantom.array, phantom.spacing, phantom.origin, gzip=False)
    raw = (folder / "raw.nrrd").read_bytes()
    (folder / "broken" / "truncated.nrrd").write_bytes(raw[: len(raw) // 3])
    (folder / "raw.nrrd").unlink()
    (folder / "broken" / "notes.nrrd").write_text("this is not an image\n")
    # a NIfTI header claiming 32767^3 voxels (70 TB): refused before anything is allocated
    header = np.zeros(348, dtype=np.uint8).tobytes()
    nifti = bytearray(header + b"\x00" * 4)
    struct.pack_into("<i", nifti, 0, 348)
    struct.pack_into("<8h", nifti, 40, 3, 32767, 32767, 32767, 1, 1, 1, 1)
    struct.pack_into("<hh", nifti, 70, 4, 16)
    struct.pack_into("<8f", nifti, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<f", nifti, 108, 352.0)
    nifti[344:348] = b"n+1\x00"
    (folder / "broken" / "huge.nii").write_bytes(bytes(nifti))
    # two DICOM series in one folder: the viewer asks which one
    small = make_phantom(shape=(48, 48, 12), spacing=(4.0, 4.0, 8.0))
    write_dicom_series(folder / "study", small, description="Chest CT")
    write_dicom_series(folder / "study" / "second", small, description="Bone window")
    # a series with a slice missing in the middle
    gap = write_dicom_series(folder / "gappy", small, description="Gappy")
    gap[len(gap) // 2].unlink()
    assert good
    return folder


@pytest.fixture(scope="module")
def viewer(data_dir: Path, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("viewer-log") / "viewer.log"
    service = start_service(
        ["view", "--data", str(data_dir), "--port", "0", "--no-open"],
        cwd=data_dir,
        log_path=log_path,
        env={"SLICER_CLOUD_SPARE_SESSIONS": "1"},
    )
    yield service
    service.stop()


def view_pixels(page, index: int = 0) -> np.ndarray:
    png = page.locator(VIEW_IMAGES).nth(index).screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.int16)


def wait_for_view(page, index: int = 0, timeout: float = 60.0) -> np.ndarray:
    """Wait until view ``index`` shows a non-blank image and return its pixels."""
    deadline = time.monotonic() + timeout
    page.wait_for_selector(VIEW_IMAGES, timeout=timeout * 1000)
    while time.monotonic() < deadline:
        loaded = page.evaluate(
            "([sel, i]) => { const im = document.querySelectorAll(sel)[i]; return !!im && im.naturalWidth > 0; }",
            [VIEW_IMAGES, index],
        )
        if loaded:
            pixels = view_pixels(page, index)
            if pixels.std() > 10:
                return pixels
        page.wait_for_timeout(250)
    raise AssertionError("the view never showed an image")


def wait_for_change(page, before: np.ndarray, index: int = 0, timeout: float = 30.0) -> np.ndarray:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = view_pixels(page, index)
        if now.shape != before.shape or (np.abs(now - before) > 20).sum() > 200:
            return now
        page.wait_for_timeout(250)
    raise AssertionError("the view did not change")


def open_page(browser, url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(90_000)  # a session process starts in seconds, slower on a busy machine
    page.goto(url, timeout=180_000)
    return context, page


def test_first_slice_shows_the_volume_then_scroll_and_window_level(browser, viewer):
    context, page = open_page(browser, viewer.url + "&open=ct.nrrd")
    try:
        axial = wait_for_view(page, 0)
        # The phantom is a body in air: the centre is tissue, the corners are air.
        h, w = axial.shape
        centre = axial[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3]
        assert centre.mean() > axial[:10, :10].mean() + 20
        assert page.locator("#sc-volume-name").inner_text() == "ct.nrrd"

        # Scrolling through slices changes the image.
        box = page.locator(VIEW_IMAGES).nth(0).bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        for _ in range(8):
            page.mouse.wheel(0, 120)
            page.wait_for_timeout(50)
        scrolled = wait_for_change(page, axial)

        # A window/level preset changes the grey values of the same slice.
        page.locator("#sc-wl-ct-lung").click()
        lung = wait_for_change(page, scrolled)
        assert not np.array_equal(lung, scrolled)

        # So does a left drag (window/level is the default left-drag mode in slice views).
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.8)
        page.mouse.down()
        for step in range(10):
            page.mouse.move(box["x"] + box["width"] / 2 + step * 15, box["y"] + box["height"] * 0.8 - step * 5)
            page.wait_for_timeout(40)
        page.mouse.up()
        wait_for_change(page, lung)
    finally:
        context.close()


def test_two_tabs_have_their_own_session_and_layout(browser, viewer):
    context_a, page_a = open_page(browser, viewer.url)
    context_b, page_b = open_page(browser, viewer.url)
    try:
        wait_for_view(page_a, 0)
        wait_for_view(page_b, 0)
        assert page_a.url.split("/s/")[1].split("/")[0] != page_b.url.split("/s/")[1].split("/")[0]
        assert page_a.locator(VIEW_IMAGES).count() == 4
        # Switch tab A to one view; tab B keeps its four.
        page_a.locator("#sc-layout-axial").click()
        page_a.wait_for_function(f"document.querySelectorAll('{VIEW_IMAGES}').length === 1", timeout=90_000)
        page_b.wait_for_timeout(1000)
        assert page_b.locator(VIEW_IMAGES).count() == 4
    finally:
        context_a.close()
        context_b.close()


def test_bad_files_give_a_message_and_the_server_keeps_serving(browser, viewer):
    context, page = open_page(browser, viewer.url + "&open=broken/truncated.nrrd")
    try:
        message = page.locator("#sc-message")
        message.wait_for(timeout=90_000)
        assert "truncated" in message.inner_text().lower() or "shorter" in message.inner_text().lower()
        # The same session still opens a good file from the data panel.
        page.locator(".sc-file", has_text="ct.nrrd").click()
        wait_for_view(page, 0)
        page.locator(".sc-file", has_text="notes.nrrd").click()
        page.wait_for_function(
            "() => (document.querySelector('#sc-message')?.innerText || '').includes('notes.nrrd')", timeout=90_000
        )
        page.locator(".sc-file", has_text="huge.nii").click()
        page.wait_for_function(
            "() => /voxels/.test(document.querySelector('#sc-message')?.innerText || '')", timeout=90_000
        )
        # ... and the volume that was open is still there, the session still answers.
        assert page.locator("#sc-volume-name").inner_text() == "ct.nrrd"
    finally:
        context.close()
    # A path that leaves the data folder is refused in the page, not served.
    context, page = open_page(browser, viewer.url + "&open=../../etc/passwd")
    try:
        page.locator("#sc-message").wait_for(timeout=90_000)
        assert "outside the data folder" in page.locator("#sc-message").inner_text()
    finally:
        context.close()


def test_upload_streams_to_the_data_folder_and_opens(browser, viewer, data_dir, tmp_path):
    phantom = make_phantom(shape=(64, 64, 32), spacing=(4.0, 4.0, 8.0))
    upload = tmp_path / "small-ct.nrrd"
    write_nrrd(upload, phantom.array, phantom.spacing, phantom.origin)
    bad = tmp_path / "fake.nii"
    bad.write_bytes(b"\x00" * 400)
    context, page = open_page(browser, viewer.url)
    try:
        wait_for_view(page, 0)
        page.locator("#sc-upload-input").set_input_files(str(upload))
        page.wait_for_function(
            "() => document.querySelector('#sc-volume-name')?.innerText.includes('small-ct')", timeout=90_000
        )
        stored = data_dir / "uploads" / "small-ct.nrrd"
        assert stored.read_bytes() == upload.read_bytes()
        # A bad upload is refused with a reason and nothing is kept.
        page.locator("#sc-upload-input").set_input_files(str(bad))
        page.wait_for_function(
            "() => (document.querySelector('#sc-message')?.innerText || '').includes('was not stored')", timeout=90_000
        )
        assert not (data_dir / "uploads" / "fake.nii").exists()
        assert not any(p.is_file() for p in (data_dir / ".uploads").rglob("*"))
    finally:
        context.close()


def test_paint_a_segment_and_save_it_into_the_data_folder(browser, viewer, data_dir):
    context, page = open_page(browser, viewer.url + "&open=ct.nrrd")
    try:
        page.locator("#sc-layout-axial").click()
        page.wait_for_function(f"document.querySelectorAll('{VIEW_IMAGES}').length === 1", timeout=90_000)
        before = wait_for_view(page, 0)
        page.get_by_role("tab", name="Segment").click()
        page.get_by_role("button", name="Add segment").click()
        page.locator("button:has(.mdi-brush)").first.click()
        box = page.locator(VIEW_IMAGES).nth(0).bounding_box()
        x0, y0 = box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5
        page.mouse.move(x0, y0)
        page.mouse.down()
        for step in range(12):
            page.mouse.move(x0 + step * 6, y0 + step * 2)
            page.wait_for_timeout(40)
        page.mouse.up()
        wait_for_change(page, before)  # the painted segment shows over the slice

        page.locator("#sc-save").click()
        page.wait_for_function(
            "() => (document.querySelector('#sc-message')?.innerText || '').includes('Saved segmentation')",
            timeout=90_000,
        )
        saved = data_dir / "segmentations" / "ct.seg.nrrd"
        assert saved.is_file()
        assert not list(saved.parent.glob("*.partial*"))
        from slicer_cloud.core.images import inspect_image

        info = inspect_image(saved)
        assert info.is_segmentation
        # The download link serves the same bytes.
        href = page.locator("#sc-download").get_attribute("href")
        response = page.request.get(urljoin(page.url, href))
        assert response.ok and response.body() == saved.read_bytes()
        # The saved segmentation opens again over the volume from the data panel.
        page.get_by_role("tab", name="Data").click()
        page.locator(".sc-file", has_text="segmentations/ct.seg.nrrd").click()
        page.wait_for_function(
            "() => (document.querySelector('#sc-message')?.innerText || '').includes('loaded over ct.nrrd')",
            timeout=90_000,
        )
    finally:
        context.close()


def test_a_dicom_folder_with_two_series_lets_the_user_pick(browser, viewer):
    context, page = open_page(browser, viewer.url + "&open=study")
    try:
        picker = page.locator("#sc-series-picker")
        picker.wait_for(timeout=90_000)
        assert page.locator(".sc-series").count() == 2
        page.locator(".sc-series", has_text="Bone window").click()
        wait_for_view(page, 0)
        page.wait_for_function(
            "() => document.querySelector('#sc-volume-name')?.innerText.includes('study')", timeout=90_000
        )
    finally:
        context.close()


def test_a_dicom_series_with_a_missing_slice_is_refused_with_a_reason(browser, viewer):
    context, page = open_page(browser, viewer.url + "&open=gappy")
    try:
        message = page.locator("#sc-message")
        message.wait_for(timeout=90_000)
        assert "missing" in message.inner_text().lower() or "gap" in message.inner_text().lower()
    finally:
        context.close()
