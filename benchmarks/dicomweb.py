"""DICOMweb: a 512x512x300 CT series in a real Orthanc on loopback, against the same series read
from the data folder.

Measures what the viewer's PACS panel does (the same library calls, without rendering): search to
the study and series lists, open to the first slice (metadata, checks, the middle slice decoded),
open to the full volume (every slice, fetched in parallel), uncompressed and JPEG-LS lossless;
reading the same files from a folder with the project's DICOM reader; storing a DICOM SEG.
Writes its section of docs/benchmarks.md. Run: ``python -m benchmarks.dicomweb``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.report import machine_line, markdown_table, write_section

SHAPE = (512, 512, 300)


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


VIEW_IMAGES = "img.image-display-area"


def _view_pixels(page) -> np.ndarray:
    import io

    from PIL import Image

    png = page.locator(VIEW_IMAGES).first.screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)


def _changed(page, before: np.ndarray) -> bool:
    now = _view_pixels(page)
    return now.shape != before.shape or int((np.abs(now - before) > 20).sum()) > 500


def _message(page) -> str:
    return page.locator("#sc-message").inner_text() if page.locator("#sc-message").count() else ""


def _wait(predicate, timeout: float = 300.0, step: float = 0.05) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if predicate():
            return time.perf_counter()
        time.sleep(step)
    raise TimeoutError("condition not met")


def viewer_rows(orthanc, data_root: Path, folder_name: str, study: str, repeats: int) -> list[list[str]]:
    """In the web viewer with headless Chromium: click to first slice on screen, click to done."""
    import json

    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM, CHROMIUM_ARGS, start_service
    from tests.dicomweb.orthanc import PASSWORD, USER

    servers = [{"name": "bench", "url": orthanc.dicomweb_url, "auth": "basic", "username": USER, "password": PASSWORD}]
    service = start_service(["view", "--data", str(data_root), "--port", "0", "--no-open"], cwd=data_root,
                            log_path=data_root.parent / "viewer.log",
                            env={"SLICER_CLOUD_SPARE_SESSIONS": "1", "SLICER_CLOUD_DICOMWEB_SERVERS": json.dumps(servers)})
    results: dict[str, list[tuple[float, float]]] = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            for _ in range(repeats):
                for case in ("uncompressed", "JPEG-LS lossless", "folder"):
                    page = browser.new_page(viewport={"width": 1280, "height": 860})
                    page.set_default_timeout(300_000)
                    page.goto(service.url, timeout=300_000)
                    page.locator("#sc-layout-axial").click()
                    page.wait_for_function(f"document.querySelectorAll('{VIEW_IMAGES}').length === 1")
                    page.wait_for_timeout(1500)
                    before = _view_pixels(page)
                    if case == "folder":
                        page.get_by_role("tab", name="Data").click()
                        item = page.locator(".sc-file", has_text=folder_name).first
                        item.wait_for()
                        start = time.perf_counter()
                        item.click()
                        _wait(lambda: page.locator("#sc-busy").count() > 0, timeout=30)  # "Opening ct..." (read whole)
                        first = _wait(lambda: _changed(page, before))
                        done = _wait(lambda: not page.locator("#sc-busy").count())
                    else:
                        page.locator("#sc-tab-pacs").click()
                        page.locator("#sc-pacs-patient").fill("phantom")
                        page.locator("#sc-pacs-search").click()
                        page.locator(".sc-pacs-study").first.click()
                        items = page.locator(".sc-pacs-series-item")
                        if case.startswith("JPEG"):
                            series = items.filter(has_text="JPEG-LS").first
                        else:
                            series = items.filter(has_text="Bench CT 512").filter(has_not_text="JPEG-LS").first
                        series.wait_for()
                        start = time.perf_counter()
                        series.click()
                        first = _wait(lambda: _changed(page, before))
                        done = _wait(lambda: "Opened" in _message(page) or "error" in (page.locator("#sc-message").get_attribute("class") or "") if page.locator("#sc-message").count() else False)
                        if "Opened" not in _message(page):
                            raise RuntimeError(f"the viewer did not open the series: {_message(page)!r}")
                    results.setdefault(case, []).append((first - start, done - start))
                    print(f"viewer {case}: first {first - start:.2f} s, all {done - start:.2f} s", flush=True)
                    page.close()
            browser.close()
    finally:
        service.stop()
    rows = []
    for case, label in (("uncompressed", "PACS, uncompressed"), ("JPEG-LS lossless", "PACS, JPEG-LS lossless"),
                        ("folder", "data folder (DICOM files)")):
        first = statistics.median(t[0] for t in results[case])
        done = statistics.median(t[1] for t in results[case])
        rows.append([f"viewer, {label}: click to first slice on screen", f"{first:.2f}", "headless Chromium, one view"])
        rows.append([f"viewer, {label}: click to all slices loaded", f"{done:.2f}", ""])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--viewer", action="store_true",
                        help="also time the web viewer in Chromium (on this 2-core machine its 512x512x300 run did not finish; see docs)")
    parser.add_argument("--viewer-repeats", type=int, default=2)
    args = parser.parse_args()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(143)))  # stop Orthanc on the way out

    import pydicom
    from pydicom.uid import JPEGLSLossless

    from slicer_cloud.core import dicom
    from slicer_cloud.core.phantom import make_phantom, write_dicom_series
    from slicer_cloud.dicomweb import retrieve, search
    from slicer_cloud.dicomweb import seg as segmod
    from slicer_cloud.dicomweb.connection import Connection
    from slicer_cloud.dicomweb.reference import SeriesRef
    from slicer_cloud.dicomweb.settings import DicomwebSettings
    from tests.dicomweb.orthanc import start_orthanc

    with tempfile.TemporaryDirectory(prefix="bench-dicomweb-") as tmp:
        tmp_path = Path(tmp)
        t0 = time.perf_counter()
        phantom = make_phantom(SHAPE, spacing=(0.7, 0.7, 1.0), noise_hu=8.0)
        folder = tmp_path / "data" / "ct"
        files = write_dicom_series(folder, phantom, description="Bench CT 512")
        print(f"series written: {len(files)} files in {time.perf_counter() - t0:.1f} s", flush=True)
        orthanc = start_orthanc(tmp_path / "orthanc")
        try:
            settings = DicomwebSettings(dicomweb_servers=[orthanc.server("bench")], dicomweb_timeout_s=120)
            conn = Connection(settings.server("bench"), settings)
            plain = [pydicom.dcmread(f) for f in files]
            study = str(plain[0].StudyInstanceUID)
            for start in range(0, len(plain), 25):
                conn.client.store_instances(plain[start:start + 25])
            compressed_uid = pydicom.uid.generate_uid()
            t0 = time.perf_counter()
            for ds in plain:
                ds.SeriesInstanceUID = compressed_uid
                ds.SOPInstanceUID = pydicom.uid.generate_uid()
                ds.SeriesDescription = "Bench CT 512 JPEG-LS"
                ds.compress(JPEGLSLossless)
            print(f"compressed in {time.perf_counter() - t0:.1f} s", flush=True)
            for start in range(0, len(plain), 25):
                conn.client.store_instances(plain[start:start + 25])
            del plain
            ref_plain = SeriesRef("bench", study, str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID))
            ref_jpegls = SeriesRef("bench", study, compressed_uid)

            rows = []

            def search_to_list():
                studies = search.search_studies(conn, patient="phantom")
                assert any(s["study"] == study for s in studies)
                assert len(search.search_series(conn, study)) == 2

            rows.append(["search studies + list the study's series (QIDO-RS)", f"{_median(search_to_list, args.repeats):.3f}", ""])

            def first_slice(ref, workers=None):
                local = settings if workers is None else settings.model_copy(update={"dicomweb_workers": workers})
                c = Connection(local.server("bench"), local)
                remote = retrieve.describe(c, ref)
                volume = np.zeros(remote.shape, remote.dtype)
                done = threading.Event()
                cancel = threading.Event()

                def on_slice(_k):
                    done.set()
                    cancel.set()  # stop after the first slice: only its time is measured

                try:
                    retrieve.fetch_slices(c, remote, volume, on_slice=on_slice, cancel=cancel)
                except Exception:  # noqa: BLE001 - the cancellation raises by design
                    pass
                assert done.is_set()

            def full(ref, workers=None):
                local = settings if workers is None else settings.model_copy(update={"dicomweb_workers": workers})
                c = Connection(local.server("bench"), local)
                volume, _info, _remote = retrieve.read_volume(c, ref)
                assert np.array_equal(volume[150], phantom.array[150])

            for name, ref in (("uncompressed", ref_plain), ("JPEG-LS lossless", ref_jpegls)):
                rows.append([f"PACS, {name}: open to first slice (metadata, checks, middle slice)",
                             f"{_median(lambda: first_slice(ref), args.repeats):.3f}", f"{settings.dicomweb_workers} parallel requests"])
                rows.append([f"PACS, {name}: open to full volume",
                             f"{_median(lambda: full(ref), args.repeats):.3f}", f"{settings.dicomweb_workers} parallel requests"])
            rows.append(["PACS, uncompressed: open to full volume, one request at a time",
                         f"{_median(lambda: full(ref_plain, workers=1), args.repeats):.3f}", "1 request at a time"])

            def folder_first():
                [series] = dicom.find_series(folder)
                pydicom.dcmread(series.files[len(series.files) // 2]).pixel_array

            def folder_full():
                [series] = dicom.find_series(folder)
                array, _info = dicom.read_series(series)
                assert np.array_equal(array[150], phantom.array[150])

            rows.append(["data folder: scan headers + middle slice", f"{_median(folder_first, args.repeats):.3f}", "same files, local disk"])
            rows.append(["data folder: full volume (project's DICOM reader)", f"{_median(folder_full, args.repeats):.3f}", "same files, local disk"])

            remote = retrieve.describe(conn, ref_plain)
            labels = np.zeros(remote.shape, np.uint8)
            zz, yy, xx = np.ogrid[:SHAPE[2], :SHAPE[1], :SHAPE[0]]
            labels[(zz - 150) ** 2 + (yy - 256) ** 2 + (xx - 300) ** 2 <= 60**2] = 1
            labels[(zz - 100) ** 2 + (yy - 200) ** 2 + (xx - 200) ** 2 <= 30**2] = 2
            segments = [segmod.Segment(1, "Liver", (0.8, 0.3, 0.2)), segmod.Segment(2, "Lesion", (0.2, 0.8, 0.2))]

            def seg_save():
                seg = segmod.build_seg(labels, remote, segments)
                segmod.store_seg(conn, seg, ref_plain)

            rows.append(["DICOM SEG save: 2 segments on 121 slices, build (highdicom) + STOW-RS",
                         f"{_median(seg_save, args.repeats):.3f}", "binary encoding"])
            if args.viewer:
                for row in rows:
                    print(" | ".join(row), flush=True)
                rows += viewer_rows(orthanc, tmp_path / "data", "ct", study, args.viewer_repeats)
        finally:
            orthanc.stop()

    load = os.getloadavg()
    table = markdown_table([f"measured (median of {args.repeats}; viewer rows: of {args.viewer_repeats})", "seconds", "note"], rows)
    body = f"""## DICOMweb (`python -m benchmarks.dicomweb`)

{machine_line()} Load average during the run: {load[0]:.1f}.

A {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} CT series (the sample phantom with noise, 300 single-frame
instances, 150 MiB of pixels) in Orthanc 1.10 with its DICOMweb plugin (Debian packages) on loopback,
HTTP basic authentication on; the same instances stored again as JPEG-LS lossless (decoded here
with pylibjpeg). The PACS rows time the library calls the viewer's PACS panel makes (without
rendering); the data folder rows read the same files with the project's DICOM reader. The machine
was shared with other test runs, so rows vary by tens of percent between runs.

{table}
"""
    print(body)
    if not args.no_write:
        write_section("dicomweb", body)


if __name__ == "__main__":
    main()
