"""The viewer gateway over real HTTP: tokens, websockets, uploads, downloads, bad requests."""

from __future__ import annotations

import subprocess
import sys

import aiohttp
import pytest
import requests

from tests.conftest import run_async, start_service


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gateway-data")
    (folder / "hello.txt").write_text("hello")
    (folder / "sub").mkdir()
    return folder


@pytest.fixture(scope="module")
def gateway(data_dir, tmp_path_factory):
    service = start_service(
        ["view", "--data", str(data_dir), "--port", "0", "--token", "s3cret-token", "--no-open"],
        cwd=data_dir,
        log_path=tmp_path_factory.mktemp("gw-log") / "gateway.log",
        env={"SLICER_CLOUD_SPARE_SESSIONS": "0", "SLICER_CLOUD_MAX_UPLOAD_BYTES": "4096"},
    )
    yield service
    service.stop()


def test_prints_the_url_with_its_token(gateway):
    assert gateway.url.startswith("http://127.0.0.1:")
    assert gateway.url.endswith("/?token=s3cret-token")


def test_health_needs_no_token(gateway):
    reply = requests.get(gateway.base + "api/health", timeout=10)
    assert reply.status_code == 200
    assert reply.json()["status"] == "ok"


@pytest.mark.parametrize("path", ["", "api/download?path=hello.txt", "s/0123456789abcdef/", "s/0123456789abcdef/ws"])
def test_every_route_refuses_without_the_token(gateway, path):
    reply = requests.get(gateway.base + path, timeout=10, allow_redirects=False)
    assert reply.status_code == 403
    assert "token" in reply.text


def test_a_wrong_token_is_refused(gateway):
    reply = requests.get(gateway.base + "?token=nope", timeout=10, allow_redirects=False)
    assert reply.status_code == 403
    assert "wrong token" in reply.text


def test_token_in_the_url_becomes_a_strict_httponly_cookie(gateway):
    reply = requests.get(gateway.base + "api/health?x=1&token=s3cret-token", timeout=10, allow_redirects=False)
    assert reply.status_code == 200  # public route: no redirect needed
    reply = requests.get(gateway.base + "api/download?path=hello.txt&token=s3cret-token", timeout=10, allow_redirects=False)
    assert reply.status_code == 302
    assert "token" not in reply.headers["Location"]
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    with requests.Session() as browser_like:
        browser_like.cookies.update(reply.cookies)
        again = browser_like.get(gateway.base + "api/download?path=hello.txt", timeout=10)
        assert again.status_code == 200 and again.text == "hello"


def test_bearer_token_works_and_a_new_tab_gets_its_own_session(gateway):
    headers = {"Authorization": "Bearer s3cret-token"}
    first = requests.get(gateway.base, headers=headers, timeout=120, allow_redirects=False)
    second = requests.get(gateway.base, headers=headers, timeout=120, allow_redirects=False)
    assert first.status_code == second.status_code == 302
    first_id = first.headers["Location"].split("/s/")[1].split("/")[0]
    second_id = second.headers["Location"].split("/s/")[1].split("/")[0]
    assert first_id != second_id
    page = requests.get(gateway.base + f"s/{first_id}/index.html", headers=headers, timeout=30)
    assert page.status_code == 200 and "<html" in page.text.lower()


def _ws_status(url: str, **kwargs) -> int:
    async def attempt() -> int:
        async with aiohttp.ClientSession() as client:
            try:
                async with client.ws_connect(url, **kwargs) as ws:
                    await ws.close()
                    return 101
            except aiohttp.WSServerHandshakeError as error:
                return error.status

    return run_async(attempt())


def test_websocket_upgrades_are_checked_on_their_own(gateway):
    headers = {"Authorization": "Bearer s3cret-token"}
    location = requests.get(gateway.base, headers=headers, timeout=120, allow_redirects=False).headers["Location"]
    session_id = location.split("/s/")[1].split("/")[0]
    ws_url = gateway.base.replace("http://", "ws://") + f"s/{session_id}/ws"
    # no credentials at all: refused before reaching the session
    assert _ws_status(ws_url) == 403
    # the right token but a cross-site origin (a page elsewhere riding the user's cookie): refused
    assert _ws_status(ws_url, headers={**headers, "Origin": "http://evil.example"}) == 403
    # the right token: the upgrade reaches the session
    assert _ws_status(ws_url, headers=headers) == 101
    # an unknown session
    assert _ws_status(gateway.base.replace("http://", "ws://") + "s/ffffffffffffffff/ws", headers=headers) == 404


def test_upload_is_staged_hidden_and_limited(gateway, data_dir):
    headers = {"Authorization": "Bearer s3cret-token"}
    reply = requests.post(gateway.base + "api/upload?name=../../evil.nrrd", data=b"x" * 100, headers=headers, timeout=10)
    assert reply.status_code == 201
    staged = reply.json()["staged"]
    assert staged.startswith(".uploads/") and staged.endswith("/evil.nrrd")
    assert (data_dir / staged).read_bytes() == b"x" * 100

    too_big = requests.post(gateway.base + "api/upload?name=big.nrrd", data=b"x" * 5000, headers=headers, timeout=10)
    assert too_big.status_code == 413
    assert "limit" in too_big.json()["error"]

    def chunks():
        for _ in range(10):
            yield b"y" * 1000  # no Content-Length: the limit is enforced while streaming

    streamed = requests.post(gateway.base + "api/upload?name=stream.nrrd", data=chunks(), headers=headers, timeout=10)
    assert streamed.status_code == 413
    assert not list(data_dir.rglob("big.nrrd")) and not list(data_dir.rglob("stream.nrrd"))
    assert not [p for p in data_dir.rglob("*.partial*")]

    empty = requests.post(gateway.base + "api/upload?name=empty.nrrd", data=b"", headers=headers, timeout=10)
    assert empty.status_code == 400
    nameless = requests.post(gateway.base + "api/upload?name=..", data=b"z", headers=headers, timeout=10)
    assert nameless.status_code == 400


@pytest.mark.parametrize(
    ("path", "status"),
    [("../etc/passwd", 403), ("/etc/passwd", 403), ("missing.nrrd", 404), ("sub", 400)],
)
def test_downloads_stay_inside_the_data_folder(gateway, path, status):
    reply = requests.get(
        gateway.base + "api/download", params={"path": path}, headers={"Authorization": "Bearer s3cret-token"}, timeout=10
    )
    assert reply.status_code == status
    assert reply.json()["error"]


def test_refuses_a_network_address_without_a_token(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "slicer_cloud.cli", "view", "--host", "0.0.0.0", "--token", "", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "without a token" in result.stderr


def test_a_full_viewer_says_so_and_keeps_serving(service_factory, tmp_path):
    service = service_factory(
        ["view", "--data", str(tmp_path), "--port", "0", "--token", "t", "--no-open"],
        env={"SLICER_CLOUD_SPARE_SESSIONS": "0", "SLICER_CLOUD_MAX_SESSIONS": "1"},
    )
    headers = {"Authorization": "Bearer t"}
    first = requests.get(service.base, headers=headers, timeout=120, allow_redirects=False)
    assert first.status_code == 302
    second = requests.get(service.base, headers=headers, timeout=120, allow_redirects=False)
    assert second.status_code == 503
    assert "in use" in second.text
    assert requests.get(service.base + "api/health", timeout=10).json()["sessions"] == 1


def test_responses_carry_security_headers(gateway):
    headers = {"Authorization": "Bearer s3cret-token"}
    location = requests.get(gateway.base, headers=headers, timeout=120, allow_redirects=False).headers["Location"]
    session_id = location.split("/s/")[1].split("/")[0]
    for url in (gateway.base + "api/download?path=hello.txt", gateway.base + f"s/{session_id}/index.html"):
        reply = requests.get(url, headers=headers, timeout=30)
        assert reply.status_code == 200
        assert reply.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
        assert reply.headers["Referrer-Policy"] == "no-referrer"
        assert "set-cookie" not in {k.lower() for k in reply.headers}
