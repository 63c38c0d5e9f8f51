"""What a page sends back is untrusted: a session never opens, moves or deletes a file because
the browser named it, except through the data root's resolver (state and triggers alike)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slicer_cloud.core.phantom import make_phantom, write_dicom_series, write_nrrd
from tests.conftest import start_service

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("client-input")
    data, outside = base / "data", base / "outside"
    data.mkdir()
    outside.mkdir()
    phantom = make_phantom(shape=(48, 48, 12), spacing=(4.0, 4.0, 8.0))
    write_nrrd(data / "keep.nrrd", phantom.array, phantom.spacing, phantom.origin)
    write_dicom_series(data / "study", phantom, description="Chest CT")
    write_dicom_series(data / "study" / "second", phantom, description="Bone window")
    write_dicom_series(outside / "private", phantom, description="Not yours")
    (outside / "secret.txt").write_text("outside the data folder")
    return data, outside


@pytest.fixture(scope="module")
def viewer(folders, tmp_path_factory):
    data, _ = folders
    service = start_service(
        ["view", "--data", str(data), "--port", "0", "--no-open"],
        cwd=data,
        log_path=tmp_path_factory.mktemp("client-input-log") / "viewer.log",
        env={"SLICER_CLOUD_SPARE_SESSIONS": "1"},
    )
    yield service
    service.stop()


def _open(browser, url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(90_000)
    page.goto(url, timeout=180_000)
    page.locator(".sc-file").first.wait_for(timeout=120_000)  # connected: the data panel is filled
    return context, page


def _message_contains(page, text: str) -> None:
    page.wait_for_function(
        "(t) => (document.querySelector('#sc-message')?.innerText || '').includes(t)", arg=text, timeout=90_000
    )


def test_triggers_and_state_from_the_page_never_name_files_outside_the_resolver(browser, viewer, folders):
    data, outside = folders
    context, page = _open(browser, viewer.url + "&open=study")
    try:
        # 1. the upload trigger with names that are not staged uploads: refused, nothing removed
        for name in ("keep.nrrd", "../outside/secret.txt", "study"):
            page.evaluate("(n) => window.trame.trigger('sc_open_upload', [n, 'x.nrrd'])", name)
            _message_contains(page, "was not stored")
        assert (data / "keep.nrrd").is_file()  # before: refused, then deleted as a "bad upload"
        assert (outside / "secret.txt").is_file()
        assert (data / "study").is_dir()

        # 2. the page rewrites the series picker's folder, then picks a series: the server's
        # own folder is used
        page.locator("#sc-series-picker").wait_for(timeout=90_000)
        page.evaluate("(f) => { window.trame.state.set('sc_series_folder', f); }", str(outside / "private"))
        page.locator(".sc-series", has_text="Bone window").click()
        page.wait_for_function(
            "() => document.querySelector('#sc-volume-name')?.innerText.includes('study')", timeout=90_000
        )
    finally:
        context.close()
    assert "Traceback" not in viewer.log()
