"""The portal as the front door, in headless Chromium against a real ``slicer-cloud serve``: the
four ways to work, thumbnails with a loading state, jobs with their progress, what runs for the
user (memory, CPU, viewer tabs) and stopping it."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import start_service
from tests.jupyter.conftest import TOKEN, Served, free_port, jupyter_env, write_volume

pytestmark = pytest.mark.e2e

TEST_MODULES = Path(__file__).parents[1] / "compute" / "modules"  # the sleeper: slow, with progress


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("portal-home")
    data = home / "data"
    write_volume(data)
    port = free_port()
    env = {**jupyter_env(home), "SLICER_CLOUD_MODULES_PATH": json.dumps([str(TEST_MODULES)])}
    service = start_service(
        ["serve", "--data", str(data), "--port", str(port), "--token", TOKEN, "--no-open"],
        cwd=home, log_path=home / "serve.log", env=env,
    )  # fmt: skip
    try:
        yield Served(service, port, data)
    finally:
        service.stop()


@pytest.fixture(scope="module")
def context(served: Served, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(120_000)
    yield context
    context.close()


def open_portal(context, served: Served, *, hold_thumbnails: list | None = None):
    page = context.new_page()
    if hold_thumbnails is not None:
        page.route("**/slice.png*", lambda route: hold_thumbnails.append(route))
    page.goto(served.root + f"slicer/?token={TOKEN}", timeout=180_000)
    page.wait_for_selector("body[data-ready=true]", timeout=180_000)
    return page


def test_the_four_ways_and_the_guides(context, served: Served):
    page = open_portal(context, served)
    tiles = page.locator("#ways .tile")
    assert tiles.count() == 4
    titles = [tiles.nth(i).locator(".tile-title").inner_text() for i in range(4)]
    assert titles == ["Viewer", "Desktop", "Notebook", "Compute API"]
    for i in range(4):
        assert len(tiles.nth(i).locator(".tile-text").inner_text()) > 30  # a sentence on when to use it
    assert page.locator("#link-viewer").get_attribute("href").endswith("/slicer-viewer/")
    guide = page.locator("#docs a", has_text="The web viewer")
    response = context.request.get(served.root + guide.get_attribute("href").lstrip("/"))
    assert response.status == 200 and "<h1>The web viewer" in response.text()
    image = context.request.get(served.root + "slicer/docs/img/viewer.png")
    assert image.status == 200 and image.body()[:4] == b"\x89PNG"
    assert context.request.get(served.root + "slicer/docs/..%2Fpyproject.md").status == 404
    page.close()


def test_a_thumbnail_shows_that_it_is_loading_until_it_arrives(context, served: Served):
    held: list = []
    page = open_portal(context, served, hold_thumbnails=held)
    thumb = page.locator(".card[data-path='ct.nrrd'] .thumb")
    thumb.wait_for()
    page.wait_for_function("() => document.querySelectorAll('.thumb.loading').length > 0")
    assert thumb.get_attribute("aria-busy") == "true"
    assert "Rendering preview" in thumb.inner_text()
    assert page.locator(".card[data-path='ct.nrrd'] .thumb .spinner").is_visible()
    page.wait_for_function("n => n > 0", arg=len(held)) if held else page.wait_for_timeout(500)
    assert held, "the thumbnail request was made"
    for route in held:
        route.continue_()
    page.wait_for_function(
        "() => { const t = document.querySelector(\".card[data-path='ct.nrrd'] .thumb\");"
        " const im = t && t.querySelector('img'); return t && !t.classList.contains('loading') && im && im.naturalWidth > 0; }",
        timeout=120_000,
    )
    assert page.locator(".card[data-path='ct.nrrd'] .thumb img").is_visible()
    assert thumb.get_attribute("aria-busy") is None
    page.close()


def test_a_running_job_shows_its_progress_then_its_end(context, served: Served):
    page = open_portal(context, served)
    job = page.evaluate(
        "() => SlicerPortal.postJSON(SlicerPortal.API + 'jobs', {module: 'sleeper', parameters: {seconds: 12}})"
    )
    page.evaluate("renderJobs()")
    row = page.locator(f"#job-rows tr[data-job-id='{job['id']}']")
    row.wait_for()
    page.wait_for_function(
        "id => { const r = document.querySelector(`#job-rows tr[data-job-id='${id}']`);"
        " const p = r && r.querySelector('progress'); return r && r.dataset.state === 'running' && p && p.value > 0; }",
        arg=job["id"], timeout=120_000,
    )  # fmt: skip
    assert re.search(r"\d+%", row.locator(".progress-cell").inner_text())
    assert "running" in page.locator("#jobs-summary").inner_text()
    # the list follows the job by itself to its end
    page.wait_for_function(
        "id => { const r = document.querySelector(`#job-rows tr[data-job-id='${id}']`); return r && r.dataset.state === 'succeeded'; }",
        arg=job["id"], timeout=120_000,
    )  # fmt: skip
    assert row.locator("progress").count() == 0
    page.close()


def test_what_runs_for_the_user_with_memory_and_cpu_and_a_stop_button(context, served: Served):
    from tests.e2e.test_viewer_browser import wait_for_view

    page = open_portal(context, served)
    api = page.locator("#running-rows tr[data-service='slicer-api']")
    api.wait_for()
    page.wait_for_function("() => document.querySelector(\"#running-rows tr[data-service='slicer-api']\").dataset.running === 'true'")
    assert re.fullmatch(r"\d+(\.\d)? [MG]B", api.locator(".memory").inner_text())
    assert re.fullmatch(r"\d+%", api.locator(".cpu").inner_text())

    with context.expect_page(timeout=60_000) as opened:
        page.locator("#link-viewer").click()
    viewer = opened.value
    wait_for_view(viewer, 0, timeout=120)
    page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")  # refresh now
    row = page.locator("#running-rows tr[data-service='slicer-viewer']")
    page.wait_for_function(
        "() => { const r = document.querySelector(\"#running-rows tr[data-service='slicer-viewer']\");"
        " return r && r.dataset.running === 'true' && /1 tab\\b/.test(r.innerText); }",
        timeout=60_000,
    )
    viewer_pids = launch_pids(served, "viewer")
    assert viewer_pids

    row.locator("button.stop").click()
    page.wait_for_function(
        "() => document.querySelector(\"#running-rows tr[data-service='slicer-viewer']\").dataset.running === 'false'",
        timeout=60_000,
    )
    assert not (launch_pids(served, "viewer") & viewer_pids), "the viewer's process ended"
    assert row.locator("button.stop").count() == 0
    viewer.close()
    # The next visit starts a fresh viewer.
    again = context.request.get(served.root + "slicer-viewer/api/health", timeout=180_000)
    assert again.status == 200
    assert launch_pids(served, "viewer") - viewer_pids
    page.close()


def launch_pids(served: Served, service: str) -> set[int]:
    """The service's launcher processes under this test's server (others may run on the machine)."""
    import psutil

    found = set()
    for process in psutil.Process(served.service.process.pid).children(recursive=True):
        try:
            argv = process.cmdline()
        except psutil.Error:
            continue
        if "slicer_cloud.jupyter.launch" in argv and service in argv:
            found.add(process.pid)
    return found


def test_the_user_server_is_quiet_kernels_over_ipc_and_no_announcements(context, served: Served):
    """JupyterLab without its news pop-up, kernels on unix sockets, and a log free of warnings a
    user cannot act on (the kernel's 'running over TCP without encryption', Jupyter's progress)."""
    page = context.new_page()
    page.goto(served.root + f"lab?token={TOKEN}", timeout=180_000)
    page.wait_for_selector(".jp-LauncherCard", timeout=180_000)
    config = page.evaluate("() => JSON.parse(document.getElementById('jupyter-config-data').textContent)")
    disabled = config["disabledExtensions"]  # a list here, a dict in some versions
    assert "@jupyterlab/apputils-extension:announcements" in disabled
    if isinstance(disabled, dict):
        assert disabled["@jupyterlab/apputils-extension:announcements"] is True
    page.close()

    session = served.session()
    kernel = session.post(served.root + "api/kernels", json={"name": "python3"}, timeout=60).json()
    try:
        runtime = Path(served.service.log_path).parent / "runtime"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(runtime.glob(f"kernel-{kernel['id']}-ipc-*")):
            time.sleep(0.5)
        assert list(runtime.glob(f"kernel-{kernel['id']}-ipc-*")), "the kernel's sockets are unix sockets"
        info = json.loads((runtime / f"kernel-{kernel['id']}.json").read_text())
        assert info["transport"] == "ipc"
    finally:
        session.delete(served.root + f"api/kernels/{kernel['id']}", timeout=60)
    log = served.service.log()
    assert "without encryption" not in log
    assert "extension was successfully" not in log  # Jupyter's progress: debug only
    assert "DeprecationWarning" not in log
