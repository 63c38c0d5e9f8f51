"""The selkies transport (``--transport selkies``): its client and websocket only through our
token-checked proxy, its server on a unix socket in the private folder (no TCP port, no shared
/tmp sockets), and the program's window on screen in real headless Chromium, keys included."""

from __future__ import annotations

import io
import os
import stat
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import requests
from PIL import Image

from slicer_cloud.desktop.settings import DesktopSettings
from tests.desktop.test_browser import band_box, wait_for
from tests.desktop.test_security import _upgrade

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def selkies_desktop(tmp_path_factory, launch_desktop):
    running = launch_desktop(tmp_path_factory.mktemp("selkies"), "--geometry", "1280x720", "--transport", "selkies")
    yield running
    running.stop()


def test_an_unknown_transport_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="novnc or selkies"):
        DesktopSettings(transport="rdp")
    assert DesktopSettings(transport="Selkies").transport == "selkies"


def test_selkies_routes_need_the_token(selkies_desktop, run_async):
    base = selkies_desktop.base
    for path in ("selkies/", "selkies/index.html", "selkies/api/websockets"):
        response = requests.get(base + path, timeout=10, allow_redirects=False)
        assert response.status_code == 403, path
    ws_url = base.replace("http://", "ws://") + "selkies/api/websockets"
    assert run_async(_upgrade(ws_url, {}))[0] == 403
    assert run_async(_upgrade(ws_url, {"Authorization": "Bearer wrong"}))[0] == 403
    status, first = run_async(_upgrade(ws_url, {"Authorization": f"Bearer {selkies_desktop.token}"}))
    assert status == 101 and first  # the stream server greets a client that has the token
    session = requests.Session()
    page = session.get(selkies_desktop.url, timeout=10)  # token -> cookie -> redirect to the selkies client
    assert page.status_code == 200 and page.url.endswith("/selkies/") and "<html" in page.text.lower()
    assert session.get(base + "vnc", timeout=10).status_code == 200  # the noVNC page stays as the fallback
    assert session.get(base + "status", timeout=10).json()["transport"] == "selkies"


def test_the_stream_server_opens_no_tcp_port_and_no_shared_socket(selkies_desktop):
    server = psutil.Process(selkies_desktop.program_pid("stream server (selkies)"))
    assert [c for c in server.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN] == []
    xvnc = psutil.Process(selkies_desktop.program_pid("X server"))
    private = Path(xvnc.cmdline()[xvnc.cmdline().index("-rfbunixpath") + 1]).parent
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o700
    paths = [c.laddr for c in server.net_connections(kind="unix") if c.laddr and not c.laddr.startswith("@")]
    assert str(private / "selkies.sock") in paths
    # Its own listening sockets (the web one, the input interposer's) all live in the private folder.
    outside = [p for p in paths if not p.startswith(str(private) + "/") and not p.startswith("/tmp/.X11-unix/")]
    assert outside == [], outside


def _screen(page) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB")).astype(np.int16)


def test_chromium_shows_the_window_and_keys_reach_it(selkies_desktop, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        page.goto(selkies_desktop.url)
        x0, y0, x1, y1 = wait_for(lambda: band_box(_screen(page)), "the fallback viewer's band through selkies", 90)
        assert x1 - x0 > 400 and y1 - y0 > 20
        page.mouse.click((x0 + x1) // 2, (y0 + y1) // 2)  # focus the viewer
        region = (slice(y1 + 5, y1 + 400), slice(x0 + 5, (x0 + x1) // 2 - 5))
        before = _screen(page)[region]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # keys until the slice view changes (the first may land before focus)
            page.keyboard.press("PageUp")
            now = _screen(page)[region]
            if int((np.abs(now - before).max(axis=2) > 30).sum()) > 500:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the slice view did not change after key presses through selkies")
        assert selkies_desktop.status()["bytes_to_browser"] > 10_000
    finally:
        context.close()
