"""The desktop is code execution for whoever types into it: it never runs without a token, and a
sandboxed frame (``Origin: null``) cannot open its websocket even with the user's credentials."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.desktop.test_security import _upgrade


def test_the_desktop_refuses_to_run_without_a_token(tmp_path):
    for how in (["--token", ""], []):  # the option, or SLICER_CLOUD_TOKEN='' below
        env = dict(os.environ, SLICER_CLOUD_CACHE_DIR=str(tmp_path))
        if not how:
            env["SLICER_CLOUD_TOKEN"] = ""
        try:
            result = subprocess.run([sys.executable, "-m", "slicer_cloud.cli", "desktop", "--port", "0", *how],
                                    capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
        except subprocess.TimeoutExpired as running:
            raise AssertionError(f"the desktop started without a token: {running.stdout!r}") from None
        assert result.returncode == 2, result.stderr
        assert "does not run without a token" in result.stderr and "Serving on" not in result.stdout


def test_a_null_origin_cannot_open_the_desktop_websocket(desktop, run_async):
    ws_url = desktop.base.replace("http://", "ws://") + "websockify"
    auth = {"Authorization": f"Bearer {desktop.token}"}
    assert run_async(_upgrade(ws_url, {**auth, "Origin": "null"}))[0] == 403
    own_origin = desktop.base.split("/", 3)[:3]
    status, first = run_async(_upgrade(ws_url, {**auth, "Origin": "/".join(own_origin)}))
    assert status == 101 and first.startswith(b"RFB 003.00")
