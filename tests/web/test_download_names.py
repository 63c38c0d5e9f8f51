"""Downloads of files whose names hold quotes, CR/LF or non-ASCII letters: every service that
sends files names them with RFC 6266 ``filename*`` and the connection survives."""

from __future__ import annotations

import re
from urllib.parse import unquote

import httpx
import pytest
import requests

from slicer_cloud.web.disposition import content_disposition
from tests.compute.conftest import start_api
from tests.conftest import start_service

NAMES = ['quote"d.txt', "line\r\nbreak.txt", "semi;colon%25.txt", "crâne 頭.txt"]


def _name_from(header: str) -> str:
    """What a client reads: the ``filename*`` parameter (RFC 5987 ext-value), decoded."""
    match = re.search(r"filename\*=([A-Za-z0-9-]+)'[^']*'([^;\s]+)", header)
    assert match, header
    assert match.group(1).upper() == "UTF-8"
    return unquote(match.group(2), errors="strict")


@pytest.mark.parametrize("name", NAMES)
def test_the_header_round_trips_any_name_and_stays_one_line(name):
    header = content_disposition(name)
    assert "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="') and header.count('"') == 2
    assert header.encode("latin-1")  # a valid HTTP header value
    assert _name_from(header) == name


@pytest.fixture
def named_files(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for name in NAMES:
        (folder / name).write_text(f"content of {name!r}")
    return folder


def test_the_viewer_gateway_sends_files_with_any_name(named_files, tmp_path):
    service = start_service(
        ["view", "--data", str(named_files), "--port", "0", "--token", "t", "--no-open"],
        cwd=named_files,
        log_path=tmp_path / "gateway.log",
        env={"SLICER_CLOUD_SPARE_SESSIONS": "0"},
    )
    try:
        for name in NAMES:
            reply = requests.get(
                service.base + "api/download", params={"path": name}, headers={"Authorization": "Bearer t"}, timeout=30
            )
            assert reply.status_code == 200, name
            assert reply.content.decode() == f"content of {name!r}"
            assert _name_from(reply.headers["Content-Disposition"]) == name
        assert requests.get(service.base + "api/health", timeout=10).status_code == 200
    finally:
        service.stop()
    assert "Traceback" not in service.log()


def test_the_compute_api_sends_files_with_any_name(named_files):
    api = start_api(named_files)
    try:
        with httpx.Client(base_url=api.base, headers=api.headers, timeout=60) as http:
            for name in NAMES:
                item = http.post("/api/items", json={"path": name, "kind": "file"})
                assert item.status_code == 201, item.text
                reply = http.get(f"/api/items/{item.json()['id']}/file")
                assert reply.status_code == 200
                assert reply.content.decode() == f"content of {name!r}"
                assert _name_from(reply.headers["Content-Disposition"]) == item.json()["name"]
    finally:
        api.stop()
