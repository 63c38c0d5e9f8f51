"""An Xvnc too old for a unix socket (TigerVNC < 1.10) is refused with the reason and the fix;
with --allow-tcp-vnc, VNC listens on a loopback port that demands a password only the bridge
knows, and the browser still connects through the token-checked bridge.

Debian ships TigerVNC 1.12, so the old one is played by the real Xvnc behind a wrapper whose
``-help`` does not list the unix-socket options (all the service looks at)."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.desktop.test_browser import band_box, canvas_pixels, wait_for
from tests.desktop.test_security import _upgrade


@pytest.fixture(scope="module")
def old_xvnc_env(tmp_path_factory) -> dict[str, str]:
    real = shutil.which("Xvnc")
    assert real, "Xvnc is missing: run scripts/bootstrap.sh"
    folder = tmp_path_factory.mktemp("old-xvnc")
    wrapper = folder / "Xvnc"
    wrapper.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do if [ "$a" = "-help" ]; then ' + real + ' -help 2>&1 | grep -v rfbunix; exit 0; fi; done\n'
        'exec ' + real + ' "$@"\n'
    )
    wrapper.chmod(0o755)
    return dict(os.environ, PATH=f"{folder}{os.pathsep}{os.environ['PATH']}")


def test_an_old_xvnc_is_refused_with_the_reason_and_the_fix(tmp_path, old_xvnc_env):
    env = dict(old_xvnc_env, SLICER_CLOUD_CACHE_DIR=str(tmp_path))
    try:
        result = subprocess.run([sys.executable, "-m", "slicer_cloud.cli", "desktop", "--port", "0", "--token", "t0k"],
                                capture_output=True, text=True, timeout=90, env=env)  # fmt: skip
    except subprocess.TimeoutExpired as running:
        raise AssertionError(f"the desktop started on password-less TCP VNC: {running.stdout!r}") from None
    assert result.returncode == 2
    assert "unix socket" in result.stderr and "TigerVNC 1.10" in result.stderr and "--allow-tcp-vnc" in result.stderr


@pytest.fixture(scope="module")
def tcp_desktop(tmp_path_factory, old_xvnc_env, launch_desktop):
    running = launch_desktop(tmp_path_factory.mktemp("tcp-desktop"), "--allow-tcp-vnc", "--geometry", "1280x720",
                             env=old_xvnc_env)  # fmt: skip
    yield running
    running.stop()


def _vnc_port(desktop) -> int:
    argv = Path(f"/proc/{desktop.program_pid('X server')}/cmdline").read_bytes().split(b"\0")
    return int(argv[argv.index(b"-rfbport") + 1])


def _read(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def test_the_tcp_port_demands_a_password(tcp_desktop):
    port = _vnc_port(tcp_desktop)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:  # another local account
        assert _read(sock, 12).startswith(b"RFB 003.")
        sock.sendall(b"RFB 003.008\n")
        count = _read(sock, 1)[0]
        offered = list(_read(sock, count))
        assert offered == [2], f"security types offered without a password: {offered}"  # VNC authentication only
        sock.sendall(b"\x02")
        _read(sock, 16)  # the challenge
        sock.sendall(b"\0" * 16)  # a guess
        assert struct.unpack(">I", _read(sock, 4))[0] != 0
    password_file = next(Path(a) for a in Path(f"/proc/{tcp_desktop.program_pid('X server')}/cmdline").read_bytes()
                         .decode().split("\0") if a.endswith("vncpasswd"))  # fmt: skip
    assert password_file.stat().st_mode & 0o077 == 0 and password_file.parent.stat().st_mode & 0o077 == 0


def test_the_bridge_answers_the_vnc_handshake_itself(tcp_desktop, run_async):
    ws_url = tcp_desktop.base.replace("http://", "ws://") + "websockify"
    assert run_async(_upgrade(ws_url, {}))[0] == 403  # the token still guards the bridge
    status, first = run_async(_upgrade(ws_url, {"Authorization": f"Bearer {tcp_desktop.token}"}))
    assert status == 101 and first == b"RFB 003.008\n"


def test_the_page_connects_through_the_password_protected_port(tcp_desktop, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(tcp_desktop.url)
        page.wait_for_selector("body[data-state=connected]", timeout=60_000)
        x0, y0, x1, y1 = wait_for(lambda: band_box(canvas_pixels(page)), "the fallback viewer on the remote screen")
        assert x1 - x0 > 400
    finally:
        context.close()
