"""The image's health check asks the Jupyter Server in the container (under the hub's prefix when
spawned by the hub) and fails when it does not answer."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading

from slicer_cloud.deploy.healthcheck import health_url


def test_the_url_follows_the_hubs_prefix() -> None:
    assert health_url({}) == "http://127.0.0.1:8888/api"
    assert health_url({"JUPYTERHUB_SERVICE_PREFIX": "/user/ann/"}) == "http://127.0.0.1:8888/user/ann/api"
    assert health_url({"SLICER_CLOUD_HEALTH_URL": "http://127.0.0.1:8081/hub/health"}) == "http://127.0.0.1:8081/hub/health"


def run_check(url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slicer_cloud.deploy.healthcheck"], capture_output=True, text=True, timeout=60,
                          env={"SLICER_CLOUD_HEALTH_URL": url, "PYTHONPATH": ":".join(sys.path)})


def test_healthy_only_when_the_server_answers() -> None:
    class Api(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            self.send_response(200 if self.path == "/api" else 503)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert run_check(f"http://127.0.0.1:{port}/api").returncode == 0
        failing = run_check(f"http://127.0.0.1:{port}/broken")
        assert failing.returncode == 1 and "unhealthy" in failing.stderr
    finally:
        server.shutdown()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert run_check(f"http://127.0.0.1:{closed}/api").returncode == 1
