"""Nothing of the desktop answers without the token, the websocket included (tested as an
attacker would: a bare upgrade, no page loaded), and VNC never listens on a network interface."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import requests


def test_every_route_but_health_needs_the_token(desktop):
    for path in ("", "desktop.js", "desktop.css", "status", "novnc/core/rfb.js", "websockify"):
        response = requests.get(desktop.base + path, timeout=10, allow_redirects=False)
        assert response.status_code == 403, path
        assert "token" in response.text
    wrong = requests.get(desktop.base + "?token=not-the-token", timeout=10, allow_redirects=False)
    assert wrong.status_code == 403
    health = requests.get(desktop.base + "healthz", timeout=10)
    assert health.status_code == 200 and health.json() == {"ok": True}


def test_token_in_url_becomes_a_strict_httponly_cookie(desktop):
    response = requests.get(desktop.url, timeout=10, allow_redirects=False)
    assert response.status_code == 302
    assert "token" not in response.headers["Location"]
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    session = requests.Session()
    page = session.get(desktop.url, timeout=10)
    assert page.status_code == 200 and "Slicer desktop" in page.text
    assert "frame-ancestors 'self'" in page.headers["Content-Security-Policy"]
    assert session.get(desktop.base + "novnc/core/rfb.js", timeout=10).status_code == 200
    # Only the indexed library files are served; no walking out of it.
    assert session.get(desktop.base + "novnc/../../../etc/passwd", timeout=10).status_code == 404
    assert session.get(desktop.base + "novnc/vnc.html", timeout=10).status_code == 404


async def _upgrade(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """A bare websocket upgrade; returns (HTTP status, first bytes received)."""
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url, headers=headers, timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
                message = await asyncio.wait_for(ws.receive(), 10)
                return 101, message.data
        except aiohttp.WSServerHandshakeError as error:
            return error.status, b""


def test_bare_websocket_upgrade_is_refused_without_the_token(desktop, run_async):
    ws_url = desktop.base.replace("http://", "ws://") + "websockify"
    assert run_async(_upgrade(ws_url, {}))[0] == 403
    assert run_async(_upgrade(ws_url + "?token=wrong", {}))[0] == 403
    assert run_async(_upgrade(ws_url, {"Authorization": "Bearer wrong"}))[0] == 403
    # The right token from another site's page (cross-site websocket hijacking) is refused too.
    evil = {"Authorization": f"Bearer {desktop.token}", "Origin": "http://evil.example"}
    assert run_async(_upgrade(ws_url, evil))[0] == 403


def test_websocket_with_the_token_reaches_the_vnc_server(desktop, run_async):
    ws_url = desktop.base.replace("http://", "ws://") + "websockify"
    status, first = run_async(_upgrade(ws_url, {"Authorization": f"Bearer {desktop.token}"}))
    assert status == 101
    assert first.startswith(b"RFB 003.00")  # the VNC server's protocol greeting


def _listening_sockets(pid: int) -> tuple[list[str], list[str]]:
    """(TCP/UDP, unix) listening sockets of ``pid``, as `ss` reports them."""
    inet = subprocess.run(["ss", "-H", "-l", "-n", "-p", "-t", "-u"], capture_output=True, text=True, check=True).stdout
    unix = subprocess.run(["ss", "-H", "-l", "-n", "-p", "-x"], capture_output=True, text=True, check=True).stdout
    mine = f"pid={pid},"
    return [line for line in inet.splitlines() if mine in line], [line for line in unix.splitlines() if mine in line]


def test_vnc_listens_on_a_private_unix_socket_only(desktop):
    xvnc = desktop.program_pid("X server")
    inet, unix = _listening_sockets(xvnc)
    assert inet == [], f"Xvnc listens on a network interface: {inet}"
    vnc_sockets = [part for line in unix for part in line.split() if part.endswith("vnc.sock")]
    assert len(vnc_sockets) == 1, unix
    vnc_socket = Path(vnc_sockets[0])
    assert stat.S_IMODE(vnc_socket.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE(vnc_socket.parent.stat().st_mode) == 0o700
    # The web side listens on loopback only, by default.
    web, _ = _listening_sockets(desktop.pid)
    assert web and all("127.0.0.1:" in line for line in web), web


def test_x_clients_need_the_cookie(desktop):
    env = desktop.x_env()
    # xsetroot -name only names the root window: a harmless X client that fails without access.
    ok = subprocess.run(["xsetroot", "-name", "cookie test"], env=env, capture_output=True, text=True, timeout=20)
    assert ok.returncode == 0, ok.stderr
    env_without = dict(env, XAUTHORITY=os.devnull)
    refused = subprocess.run(["xsetroot", "-name", "cookie test"], env=env_without, capture_output=True, text=True, timeout=20)
    assert refused.returncode != 0 and "unable to open display" in refused.stderr


def test_non_loopback_host_without_token_is_refused(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "slicer_cloud.cli", "desktop", "--host", "0.0.0.0", "--token", "", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, SLICER_CLOUD_CACHE_DIR=str(tmp_path)),
    )
    assert result.returncode != 0
    assert "without a token" in result.stderr
    assert "Serving on" not in result.stdout


@pytest.mark.parametrize("geometry", ["big", "10x10"])
def test_bad_geometry_is_refused_clearly(geometry, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "slicer_cloud.cli", "desktop", "--geometry", geometry, "--port", "0"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "geometry" in result.stderr
