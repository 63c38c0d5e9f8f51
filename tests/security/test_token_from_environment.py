"""Every command takes its token from SLICER_CLOUD_TOKEN (the typed settings), so a fixed token
never has to be on the command line, which every local user can read in /proc."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.conftest import start_service
from tests.jupyter.conftest import free_port, jupyter_env

ENV_TOKEN = "token-from-the-environment-42"


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_view_reads_the_token_from_the_environment(tmp_path):
    (tmp_path / "hello.txt").write_text("hello")
    service = start_service(
        ["view", "--data", str(tmp_path), "--port", "0", "--no-open"],
        cwd=tmp_path,
        log_path=tmp_path / "view.log",
        env={"SLICER_CLOUD_TOKEN": ENV_TOKEN, "SLICER_CLOUD_SPARE_SESSIONS": "0"},
    )
    try:
        assert service.token == ENV_TOKEN, service.url
        assert ENV_TOKEN not in _cmdline(service.process.pid)
        url = service.base + "api/download?path=hello.txt"
        assert requests.get(url, timeout=30).status_code == 403
        answer = requests.get(url, headers={"Authorization": f"Bearer {ENV_TOKEN}"}, timeout=30)
        assert answer.status_code == 200 and answer.text == "hello"
    finally:
        service.stop()


def test_serve_reads_the_token_from_the_environment(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    service = start_service(
        ["serve", "--data", str(data), "--port", str(port), "--no-open"],
        cwd=tmp_path,
        log_path=tmp_path / "serve.log",
        env={**jupyter_env(tmp_path), "SLICER_CLOUD_TOKEN": ENV_TOKEN},
    )
    try:
        assert service.token == ENV_TOKEN, service.url
        assert ENV_TOKEN not in _cmdline(service.process.pid)
        status = f"http://127.0.0.1:{port}/api/status"
        assert requests.get(status, timeout=30).status_code == 403
        assert requests.get(status, headers={"Authorization": f"token {ENV_TOKEN}"}, timeout=30).status_code == 200
    finally:
        service.stop()
