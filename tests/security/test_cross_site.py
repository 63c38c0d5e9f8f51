"""Cross-site requests and DNS rebinding, against real services and a real browser.

With the token off (``--token ''``, loopback only) the cross-site check is the only guard, so a
sandboxed frame (``Origin: null``) or a DNS-rebinding page (a foreign ``Host``) must not reach an
upload route or a websocket; with a token, ``Origin: null`` must not ride on the user's cookie.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from slicer_cloud.security import CookieSessions, check_request, is_cross_site
from tests.compute.conftest import start_api, wait_for
from tests.conftest import start_service
from tests.security.conftest import attacker_site


@pytest.fixture(scope="module")
def open_api(tmp_path_factory):
    """The compute API with the token off (loopback only)."""
    data = tmp_path_factory.mktemp("open-api")
    server = start_api(data, "--token", "")
    yield server
    server.stop()


def _items(server) -> list[str]:
    return [item["name"] for item in httpx.get(server.base + "/api/items", timeout=30).json()["items"]]


def _upload(server, headers: dict[str, str], name: str) -> httpx.Response:
    return httpx.post(server.base + "/api/items", files={"file": (name, b"hello\n")}, params={"kind": "file"},
                      headers=headers, timeout=30)  # fmt: skip


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "null"},  # a sandboxed frame, a data: page
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "same-site"},  # a page on another port of this host, no Origin sent
        {"Host": "rebind.example"},  # DNS rebinding: the attacker's name, resolving to 127.0.0.1
    ],
    ids=["origin-null", "origin-null-cross-site", "foreign-origin", "same-site-no-origin", "rebinding-host"],
)
def test_tokenless_api_refuses_cross_site_uploads(open_api, headers):
    name = "evil-" + re.sub(r"\W", "", str(sorted(headers.items())))[:40] + ".txt"
    if "Host" in headers:
        port = open_api.base.rsplit(":", 1)[1]
        headers = {"Host": f"{headers['Host']}:{port}", "Origin": f"http://{headers['Host']}:{port}"}
    answer = _upload(open_api, headers, name)
    assert answer.status_code == 403, answer.text
    assert name not in _items(open_api)


def test_tokenless_api_still_serves_its_own_pages(open_api):
    # The browser's own same-origin form post under Referrer-Policy no-referrer says Origin null,
    # and vouches for itself with Sec-Fetch-Site, which no page can set.
    answer = _upload(open_api, {"Origin": "null", "Sec-Fetch-Site": "same-origin"}, "own-form.txt")
    assert answer.status_code == 201, answer.text
    port = open_api.base.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert httpx.get(open_api.base + "/api/items", headers={"Host": host}, timeout=30).status_code == 200


def test_a_sandboxed_frame_in_a_real_browser_cannot_upload(open_api, browser):
    """The attack as a browser runs it: a page elsewhere holds a sandboxed frame (Origin null)
    that builds a file and posts a multipart form to the token-less API."""
    frame = f"""<form id=f method=post enctype=multipart/form-data action="{open_api.base}/api/items?kind=file">
      <input type=file name=file id=i></form>
      <script>const t = new DataTransfer(); t.items.add(new File(['pwned'], 'from-frame.txt'));
      document.getElementById('i').files = t.files; document.getElementById('f').submit();</script>"""
    attacker = f"<iframe sandbox='allow-forms allow-scripts' srcdoc=\"{frame.replace(chr(34), '&quot;')}\"></iframe>"
    context = browser.new_context()
    page = context.new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(f"{request.url}: {request.failure}"))
    try:
        with attacker_site(attacker) as site:
            page.goto(site.url)
            posted = wait_for(lambda: next((f for f in page.frames if "/api/items" in f.url), None) or failed,
                              timeout_s=60)  # fmt: skip
            assert not failed, failed
            posted.wait_for_load_state()
            answer = posted.content()
        assert "cross-site request refused" in answer, answer
        assert "from-frame.txt" not in _items(open_api)
    finally:
        context.close()


def test_tokenless_viewer_refuses_origin_null_and_foreign_hosts(tmp_path: Path):
    viewer = start_service(["view", "--data", str(tmp_path), "--port", "0", "--token", "", "--no-open"], cwd=tmp_path,
                           log_path=tmp_path / "view.log", env={"SLICER_CLOUD_SPARE_SESSIONS": "0"})  # fmt: skip
    try:
        port = viewer.base.split(":")[2].split("/")[0]
        upload = viewer.base + "api/upload?name=evil.txt"
        for headers in ({"Origin": "null"}, {"Host": f"rebind.example:{port}"}):
            answer = httpx.post(upload, content=b"keystrokes", headers=headers, timeout=30)
            assert answer.status_code == 403, (headers, answer.text)
        assert not list(tmp_path.glob(".uploads/*/evil.txt"))
        assert "loopback Host" in httpx.get(viewer.base, headers={"Host": f"rebind.example:{port}"}, timeout=30).text
        assert httpx.post(upload, content=b"mine", timeout=30).status_code == 201  # a plain local client
    finally:
        viewer.stop()


# --- the rules themselves -------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers, method, cross",
    [
        ({"Host": "127.0.0.1:8080", "Origin": "http://127.0.0.1:8080"}, "POST", False),
        ({"Host": "127.0.0.1:8080", "Origin": "http://127.0.0.1:9999"}, "GET", True),
        ({"Host": "127.0.0.1:8080", "Origin": "null"}, "GET", True),
        ({"Host": "127.0.0.1:8080", "Origin": "null", "Sec-Fetch-Site": "same-origin"}, "POST", False),
        ({"Host": "127.0.0.1:8080", "Sec-Fetch-Site": "cross-site"}, "GET", False),  # a link followed
        ({"Host": "127.0.0.1:8080", "Sec-Fetch-Site": "cross-site"}, "POST", True),
        ({"Host": "127.0.0.1:8080"}, "POST", False),  # not a browser
    ],
)
def test_cross_site_rules(headers, method, cross):
    assert is_cross_site(headers, method) is cross


def test_without_a_token_only_loopback_hosts_pass():
    def allowed(host: str) -> bool:
        return check_request("", headers={"Host": host}, cookies={}, query={}, port=8080).allowed

    assert all(map(allowed, ["127.0.0.1:8080", "localhost:8080", "[::1]:8080", "127.0.0.2"]))
    assert not any(map(allowed, ["rebind.example:8080", "192.168.1.5:8080", "[fe80::1]:8080", "0.0.0.0:8080"]))
    # With a token the Host does not matter: a rebinding page never has the token.
    sessions = CookieSessions(8080)
    bearer = check_request("t0k", headers={"Host": "rebind.example:8080", "Authorization": "Bearer t0k"},
                           cookies={}, query={}, port=8080, sessions=sessions)  # fmt: skip
    assert bearer.allowed
