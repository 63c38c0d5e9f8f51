"""``slicer-cloud serve``: the portal and the three proxied services behind Jupyter's login,
websockets included, and unreachable around the proxy without their per-launch secret."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.jupyter.conftest import TOKEN, Served, ws_handshake

SERVICES = ("slicer-viewer", "slicer-desktop", "slicer-api")


def ws_url(served: Served, path: str) -> str:
    return f"ws://127.0.0.1:{served.port}/{path}"


def start_all(served: Served) -> dict[str, int]:
    """Start the three services (first use starts them) and return their loopback ports."""
    session = served.session()
    for name in SERVICES:
        response = session.get(served.root + name + "/", allow_redirects=False, timeout=180)
        assert response.status_code < 500, (name, response.status_code, response.text[:300])
    ports = served.service_ports()
    assert set(ports) == {"viewer", "desktop", "api"}, served.service.log()[-3000:]
    return ports


# --- the portal ---------------------------------------------------------------------------------
def test_the_default_page_is_the_portal_and_it_needs_the_login(served: Served):
    anonymous = requests.get(served.root + "slicer/", allow_redirects=False, timeout=30)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert requests.get(served.root + "slicer/files", timeout=30).status_code == 403

    landing = requests.get(served.root + f"?token={TOKEN}", timeout=30)
    assert landing.status_code == 200 and urlsplit(landing.url).path == "/slicer/"
    assert 'data-base-url="/"' in landing.text and "slicer-api/docs" in landing.text


def test_the_portal_lists_the_data_folder(served: Served):
    (served.data / "notes.txt").write_text("not an image\n")
    listing = served.session().get(served.root + "slicer/files", timeout=30).json()
    assert [f["path"] for f in listing["files"]] == ["ct.nrrd"]
    assert listing["root"] == str(served.data.resolve())


def test_launcher_entries_for_the_three_services(served: Served):
    info = served.session().get(served.root + "server-proxy/servers-info", timeout=30).json()
    entries = {s["name"]: s["launcher_entry"] for s in info["server_processes"]}
    assert set(SERVICES) <= set(entries)
    assert entries["slicer-viewer"]["title"] == "Slicer viewer"
    icon = served.session().get(served.root.rstrip("/") + entries["slicer-desktop"]["icon_url"], timeout=30)
    assert icon.status_code == 200 and b"<svg" in icon.content


# --- the proxied services -----------------------------------------------------------------------
def test_each_service_answers_through_the_proxy_with_the_login(served: Served):
    session = served.session()
    start_all(served)
    assert session.get(served.root + "slicer-api/api/health", timeout=60).json()["status"] == "ok"
    viewer = session.get(served.root + "slicer-viewer/", allow_redirects=False, timeout=120)
    assert viewer.status_code == 302 and viewer.headers["Location"].startswith("/slicer-viewer/s/")
    page = session.get(served.root + "slicer-desktop/", timeout=60)
    assert page.status_code == 200 and "desktop.js" in page.text


def test_the_api_knows_its_prefix(served: Served):
    session = served.session()
    docs = session.get(served.root + "slicer-api/docs", timeout=60)
    assert docs.status_code == 200 and "/slicer-api/openapi.json" in docs.text
    assert "/slicer-api/docs-assets/swagger-ui-bundle.js" in docs.text
    schema = session.get(served.root + "slicer-api/openapi.json", timeout=60).json()
    assert schema["servers"][0]["url"] == "/slicer-api"
    assert session.get(served.root + "slicer-api/docs-assets/swagger-ui-bundle.js", timeout=60).status_code == 200


@pytest.mark.parametrize("name", SERVICES)
def test_http_without_login_is_refused(served: Served, name: str):
    for method in ("GET", "POST"):
        response = requests.request(method, served.root + name + "/api/items", allow_redirects=False, timeout=30)
        # GET: sent to the login page; anything else: 403. Never the service's own answer.
        assert response.status_code in (302, 403), (method, response.status_code)
        if response.status_code == 302:
            assert "/login" in response.headers["Location"]
    wrong = requests.get(served.root + name + "/", headers={"Authorization": "token wrong"}, allow_redirects=False, timeout=30)
    assert wrong.status_code in (302, 403)


@pytest.mark.parametrize(
    "name,path",
    [("slicer-viewer", "slicer-viewer/s/0123456789abcdef/ws"), ("slicer-desktop", "slicer-desktop/websockify"), ("slicer-api", "slicer-api/api/health")],
)
def test_websocket_upgrade_without_login_is_refused(served: Served, name: str, path: str):
    # jupyter-server-proxy once let websockets through unauthenticated (CVE-2024-28179).
    status, _ = ws_handshake(ws_url(served, path))
    assert status in (401, 403)
    status, _ = ws_handshake(ws_url(served, path) + "?token=wrong")
    assert status in (401, 403)
    status, _ = ws_handshake(ws_url(served, path), headers={"Authorization": "token wrong"})
    assert status in (401, 403)
    # A logged-in browser's cookie, sent by another site's page: refused by the origin check.
    browser = requests.Session()
    assert browser.get(served.root + f"slicer/?token={TOKEN}", timeout=30).status_code == 200
    cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
    status, _ = ws_handshake(ws_url(served, path), headers={"Cookie": cookie, "Origin": "http://evil.example"})
    assert status in (401, 403)


def test_websockets_pass_the_proxy_with_the_login(served: Served):
    start_all(served)
    auth = {"Authorization": f"token {TOKEN}"}
    # The desktop's bridge speaks VNC: its first message is the RFB banner from Xvnc.
    status, first = ws_handshake(ws_url(served, "slicer-desktop/websockify"), headers=auth, protocols=("binary",))
    assert status == 101 and first.startswith(b"RFB 003.")
    # The viewer: a session's websocket opens through the gateway.
    location = served.session().get(served.root + "slicer-viewer/", allow_redirects=False, timeout=120).headers["Location"]
    session_id = re.match(r"/slicer-viewer/s/([0-9a-f]+)/", location).group(1)
    status, _ = ws_handshake(ws_url(served, f"slicer-viewer/s/{session_id}/ws"), headers=auth)
    assert status == 101


def test_services_are_unreachable_around_the_proxy(served: Served):
    ports = start_all(served)
    for name, port in ports.items():
        direct = f"http://127.0.0.1:{port}/slicer-{name}/"
        for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}, {"Authorization": f"token {TOKEN}"}):
            response = requests.get(direct + ("api/items" if name == "api" else ""), headers=headers, allow_redirects=False, timeout=30)
            assert response.status_code in (401, 403), (name, headers, response.status_code)
    status, _ = ws_handshake(f"ws://127.0.0.1:{ports['desktop']}/slicer-desktop/websockify", protocols=("binary",))
    assert status in (401, 403)


def test_the_secret_is_not_on_any_command_line_nor_in_the_log(served: Served):
    start_all(served)
    secrets = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"slicer_cloud.jupyter.launch" not in (proc / "cmdline").read_bytes():
                continue
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        secrets |= {entry.split(b"=", 1)[1] for entry in environ if entry.startswith(b"SLICER_CLOUD_PROXY_SECRET=")}
    assert len(secrets) >= 2  # viewer and desktop at least (each its own secret)
    log = served.service.log().encode()
    assert not any(secret in log for secret in secrets)
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes()
        except OSError:
            continue
        assert not any(secret in text for secret in secrets), text.replace(b"\0", b" ")[:300]


# --- end to end in headless Chromium ------------------------------------------------------------
@pytest.fixture(scope="module")
def portal(served: Served, browser):
    """A browser tab on the portal, logged in once with the token (then Jupyter's cookie)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # Voila executes a whole notebook before it answers, and the portal's first load starts
    # Jupyter's extensions: on a busy 2-core machine either outlasts Playwright's 30 s default.
    context.set_default_navigation_timeout(300_000)
    page = context.new_page()
    page.goto(served.root + f"slicer/?token={TOKEN}")
    page.wait_for_selector("body[data-ready=true]", timeout=180_000)
    yield page
    context.close()


def test_portal_shows_the_volume_and_opens_it_in_the_viewer(portal, served: Served):
    from tests.e2e.test_viewer_browser import wait_for_view

    card = portal.locator(".card[data-path='ct.nrrd']")
    card.wait_for(timeout=60_000)
    portal.wait_for_function(
        "() => { const im = document.querySelector(\".card[data-path='ct.nrrd'] img\"); return im && im.complete && im.naturalWidth > 0; }",
        timeout=120_000,
    )
    with portal.context.expect_page(timeout=60_000) as opened:
        card.locator("a.open-viewer").click()
    viewer = opened.value
    try:
        assert viewer.url.startswith(served.root + "slicer-viewer/s/")
        axial = wait_for_view(viewer, 0, timeout=120)
        h, w = axial.shape
        assert axial[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].mean() > axial[:10, :10].mean() + 20
    finally:
        viewer.close()


def wait_for_label_map(page, timeout_s: float = 120.0):
    """The first view's pixels once it shows some labelled (bright) voxels."""
    from tests.e2e.test_viewer_browser import VIEW_IMAGES, view_pixels

    page.wait_for_selector(VIEW_IMAGES, timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pixels = view_pixels(page, 0)
        if (pixels > 128).any():
            return pixels
        page.wait_for_timeout(250)
    raise AssertionError("the viewer never showed the label map")


def test_threshold_from_the_portal_opens_its_result_in_the_viewer(portal, served: Served):
    portal.locator(".card[data-path='ct.nrrd'] button.process").click()
    portal.wait_for_selector("#param-lower", timeout=60_000)
    assert portal.locator("#module").input_value() == "threshold"
    portal.fill("#param-lower", "200")
    portal.fill("#param-upper", "3000")
    portal.click("#run")
    portal.wait_for_function("document.querySelector('#job-state').textContent === 'succeeded'", timeout=180_000)
    result = portal.locator("#job-result a.open-result").first
    result.wait_for(timeout=30_000)
    assert int(portal.locator("#job-result td").first.inner_text()) > 0  # voxel_count
    with portal.context.expect_page(timeout=60_000) as opened:
        result.click()
    viewer = opened.value
    try:
        assert "open=.slicer-cloud" in result.get_attribute("href")
        mask = wait_for_label_map(viewer)
        bright = (mask > 128).sum()
        assert 0 < bright < mask.size // 2  # a label map: some bone, mostly background
    finally:
        viewer.close()
    # The job is in the list, with its result.
    row = portal.locator("#job-rows tr", has_text="threshold")
    row.first.wait_for(timeout=30_000)
    assert "succeeded" in row.first.inner_text()


def test_the_desktop_through_the_proxy_connects(portal, served: Served):
    with portal.context.expect_page(timeout=60_000) as opened:
        portal.locator("#link-desktop").click()
    desktop = opened.value
    try:
        desktop.wait_for_selector("body[data-state=connected]", timeout=90_000)
        canvas = desktop.locator("#screen canvas")
        assert canvas.bounding_box()["width"] > 300
    finally:
        desktop.close()


def test_the_dashboard_notebook_works_in_voila(portal, served: Served):
    # Voila runs the notebook in a kernel and shows only its outputs: the Viewer widget's image.
    dashboard = Path(__file__).parents[2] / "examples" / "dashboard.ipynb"
    (served.data / "dashboard.ipynb").write_bytes(dashboard.read_bytes())
    page = portal.context.new_page()
    try:
        page.goto(served.root + "voila/render/dashboard.ipynb")
        page.wait_for_function(
            "() => [...document.querySelectorAll('img')].some(im => im.src.startsWith('blob:') && im.naturalWidth >= 128)",
            timeout=180_000,
        )
        page.wait_for_selector("text=volume_ml", timeout=180_000)  # the measurement's table
        assert page.locator("select").first.input_value() == "ct.nrrd"
    finally:
        page.close()
