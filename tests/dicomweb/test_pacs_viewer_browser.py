"""The viewer's PACS panel end to end: a real Orthanc, a real ``slicer-cloud view`` and Chromium.

Search, open (plain and JPEG-LS), paint a segment, save to PACS as DICOM SEG, read the SEG back
with highdicom and compare it voxel for voxel with the painted label map, reopen it as a
segmentation; ``?open=dicomweb:`` links; wrong credentials and an unreachable server.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import start_service
from tests.dicomweb.orthanc import PASSWORD, USER, free_port, phantom_datasets
from tests.e2e.test_viewer_browser import VIEW_IMAGES, view_pixels, wait_for_view

pytestmark = pytest.mark.e2e

@pytest.fixture(scope="module")
def pacs_studies(conn):
    """Two studies of the sample: one uncompressed, one JPEG-LS, each with its own description."""
    from pydicom.uid import JPEGLSLossless

    studies = {}
    for key, syntax in (("plain", None), ("jpegls", JPEGLSLossless)):
        phantom, datasets = phantom_datasets(shape=(96, 80, 20), description=f"Browser {key}", syntax=syntax)
        for ds in datasets:
            ds.StudyDescription = f"E2E {key} study"
        conn.client.store_instances(datasets)
        studies[key] = (phantom, datasets)
    return studies


@pytest.fixture(scope="module")
def pacs_viewer(orthanc, pacs_studies, tmp_path_factory):
    data = tmp_path_factory.mktemp("pacs-viewer-data")
    servers = [
        {"name": "orthanc", "url": orthanc.dicomweb_url, "auth": "basic", "username": USER, "password": PASSWORD},
        {"name": "wrongpass", "url": orthanc.dicomweb_url, "auth": "basic", "username": USER, "password": "not-it"},
        {"name": "offline", "url": f"http://127.0.0.1:{free_port()}/dicom-web"},
    ]
    service = start_service(
        ["view", "--data", str(data), "--port", "0", "--no-open"],
        cwd=data,
        log_path=tmp_path_factory.mktemp("pacs-viewer-log") / "viewer.log",
        env={"SLICER_CLOUD_SPARE_SESSIONS": "1", "SLICER_CLOUD_DICOMWEB_SERVERS": json.dumps(servers),
             "SLICER_CLOUD_DICOMWEB_TIMEOUT_S": "20"},
    )
    service.data = data
    yield service
    service.stop()


def open_page(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(90_000)
    page.goto(url, timeout=180_000)
    return context, page


def wait_for_message(page, text: str, timeout: float = 120.0) -> str:
    try:
        page.wait_for_function(
            "(t) => (document.querySelector('#sc-message')?.innerText || '').includes(t)", arg=text, timeout=timeout * 1000
        )
    except Exception:
        shown = page.evaluate("() => document.querySelector('#sc-message')?.innerText || '(no message)'")
        raise AssertionError(f"expected a message with {text!r}; the page shows: {shown}") from None
    return page.locator("#sc-message").inner_text()


def search(page, **fields) -> None:
    page.locator("#sc-tab-pacs").click()
    for key, value in fields.items():
        page.locator(f"#sc-pacs-{key.replace('_', '-')}").fill(value)
    page.locator("#sc-pacs-search").click()


def test_search_open_paint_save_to_pacs_and_reopen(browser, pacs_viewer, pacs_studies, conn):
    from slicer_cloud.compute.imageio import read_volume
    from slicer_cloud.dicomweb import retrieve, search as qido, seg as segmod
    from slicer_cloud.dicomweb.reference import SeriesRef

    phantom, datasets = pacs_studies["plain"]
    study, series = str(datasets[0].StudyInstanceUID), str(datasets[0].SeriesInstanceUID)
    context, page = open_page(browser, pacs_viewer.url)
    try:
        page.locator("#sc-layout-axial").click()
        search(page, patient="phantom", description="E2E plain")
        page.locator(".sc-pacs-study").first.wait_for()
        assert page.locator(".sc-pacs-study").count() == 1
        assert "E2E plain study" in page.locator(".sc-pacs-study").inner_text()
        page.locator(".sc-pacs-study").click()
        item = page.locator(".sc-pacs-series-item", has_text="Browser plain")
        item.wait_for()
        assert "CT · 20 images" in item.inner_text()
        page.locator(".sc-pacs-thumb").first.wait_for()  # the thumbnail arrives after the list
        # credentials and the server's address stay on the server side
        html = page.content()
        assert PASSWORD not in html and f":{pacs_viewer_port(conn)}" not in html
        item.click()
        wait_for_message(page, "Opened Browser plain")
        before = wait_for_view(page, 0, timeout=90)

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
        deadline_pixels = before
        for _ in range(120):
            now = view_pixels(page, 0)
            if (np.abs(now - deadline_pixels) > 20).sum() > 200:
                break
            page.wait_for_timeout(250)
        else:
            raise AssertionError("the painted segment never showed")

        page.locator("#sc-tab-pacs").click()
        page.locator("#sc-pacs-save").click()
        wait_for_message(page, "Saved the segmentation to the PACS 'orthanc' as DICOM SEG")
        page.locator("#sc-save").click()  # the same segmentation into the data folder, as Slicer exports it
        wait_for_message(page, "Saved segmentation to")
    finally:
        context.close()

    # The SEG on the server: references the source series and holds exactly the painted voxels.
    seg_rows = [r for r in qido.search_series(conn, study) if r["modality"] == "SEG"]
    assert len(seg_rows) == 1
    seg_ref = SeriesRef("orthanc", study, seg_rows[0]["series"])
    seg, source = segmod.referenced_series(conn, seg_ref)
    assert source == SeriesRef("orthanc", study, series)
    assert seg.FrameOfReferenceUID == datasets[0].FrameOfReferenceUID
    referenced = {str(i.ReferencedSOPInstanceUID) for s in seg.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence}
    assert referenced == {str(ds.SOPInstanceUID) for ds in datasets}
    assert seg.get_segment_description(1).segment_label
    remote = retrieve.describe(conn, source)
    labels = segmod.seg_on_volume(seg, remote, seg_ref).labels
    [saved] = list((pacs_viewer.data / "segmentations").glob("*.seg.nrrd"))
    painted = read_volume(saved).array
    assert painted.shape == labels.shape
    assert int((painted > 0).sum()) > 20  # the stroke covered voxels
    assert np.array_equal(labels, painted.astype(labels.dtype))

    # Reopening the study shows the SEG as a segmentation over its volume.
    context, page = open_page(browser, pacs_viewer.url + f"&open=dicomweb:orthanc/{study}/{seg_ref.series}")
    try:
        message = wait_for_message(page, "loaded over")
        assert "1 segments" in message or "(1 segment" in message
        wait_for_view(page, 0, timeout=90)
    finally:
        context.close()


def pacs_viewer_port(conn) -> str:
    return conn.server.url.split(":")[2].split("/")[0]


def test_a_link_opens_a_compressed_series(browser, pacs_viewer, pacs_studies):
    phantom, datasets = pacs_studies["jpegls"]
    link = f"dicomweb:orthanc/{datasets[0].StudyInstanceUID}/{datasets[0].SeriesInstanceUID}"
    context, page = open_page(browser, pacs_viewer.url + f"&open={link}")
    try:
        wait_for_message(page, "Opened Browser jpegls")
        wait_for_view(page, 0, timeout=90)
        assert "Browser jpegls" in page.locator("#sc-volume-name").inner_text()
    finally:
        context.close()


def pick_server(page, name: str) -> None:
    page.locator(".v-select:has(#sc-pacs-server) .v-field").click()
    page.get_by_role("option", name=name, exact=True).click()


def test_wrong_credentials_and_an_unreachable_server_give_messages(browser, pacs_viewer):
    context, page = open_page(browser, pacs_viewer.url)
    try:
        page.locator("#sc-tab-pacs").click()
        for server, expected in (("wrongpass", "refused the credentials"), ("offline", "cannot be reached")):
            pick_server(page, server)
            page.locator("#sc-pacs-search").click()
            text = wait_for_message(page, expected)
            assert server in text and "127.0.0.1" not in text
            page.locator("#sc-message button").first.click()  # close it
        # a link to a server that does not exist
        page.goto(pacs_viewer.url + "&open=dicomweb:nowhere/1.2.3/4.5.6", timeout=180_000)
        wait_for_message(page, "no DICOMweb server named 'nowhere'")
        # and the viewer still works afterwards
        page.locator("#sc-tab-pacs").click()
        pick_server(page, "orthanc")
        page.locator("#sc-pacs-description").fill("E2E jpegls")
        page.locator("#sc-pacs-search").click()
        page.locator(".sc-pacs-study").first.wait_for()
    finally:
        context.close()
