"""The portal of ``slicer-cloud --pacs ... serve`` lists the PACS' recent studies, and each
series links to the viewer with ?open=dicomweb:..."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from tests.conftest import start_service
from tests.dicomweb.orthanc import PASSWORD, USER
from tests.jupyter.conftest import TOKEN, free_port, jupyter_env

pytestmark = pytest.mark.e2e


def test_portal_lists_recent_studies_with_viewer_links(browser, orthanc, conn, tmp_path):
    from tests.dicomweb.orthanc import phantom_datasets

    phantom, datasets = phantom_datasets(shape=(32, 32, 6), description="Portal series")
    for ds in datasets:
        ds.StudyDescription = "Portal study"
        ds.StudyDate = "20991231"  # the newest study on the server
    conn.client.store_instances(datasets)
    password_file = tmp_path / "pacs-password"
    password_file.write_text(PASSWORD)
    password_file.chmod(0o600)
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    port = free_port()
    spec = f"name=hospital,url={orthanc.dicomweb_url},auth=basic,username={USER},password_file={password_file}"
    service = start_service(
        ["--pacs", spec, "serve", "--data", str(home / "data"), "--port", str(port), "--token", TOKEN, "--no-open"],
        cwd=home, log_path=home / "serve.log", env={**jupyter_env(home), "SLICER_CLOUD_DICOMWEB_SERVERS": ""},
    )
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(180_000)
        page.goto(f"http://127.0.0.1:{port}/slicer/?token={TOKEN}", timeout=180_000)
        page.locator("#pacs").wait_for(state="visible")
        study = page.locator(".pacs-study", has_text="Portal study")
        study.first.wait_for()
        assert study.count() == 1
        assert "(hospital)" in study.first.inner_text()
        study.first.locator("button").click()
        link = study.first.locator(".open-pacs").first
        link.wait_for()
        href = unquote(link.get_attribute("href"))
        assert href.endswith(f"?open=dicomweb:hospital/{datasets[0].StudyInstanceUID}/{datasets[0].SeriesInstanceUID}")
        assert PASSWORD not in page.content() and orthanc.dicomweb_url not in page.content()
        context.close()
    finally:
        service.stop()
