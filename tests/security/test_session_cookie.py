"""The token cookie holds a short-lived session id, not the token: browsers send a host's cookies
to every port of it, so another local page receives it and must not be able to use it as the
token, on another service, or for long."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

import httpx
import pytest

from slicer_cloud.security import CookieSessions, cookie_name
from tests.compute.conftest import TOKEN, start_api, wait_for
from tests.security.conftest import attacker_site


def _port(server) -> int:
    return int(server.base.rsplit(":", 1)[1])


def _set_cookie(response: httpx.Response, port: int) -> str:
    parsed = SimpleCookie()
    parsed.load(response.headers["set-cookie"])
    return parsed[cookie_name(port)].value


@pytest.fixture(scope="module")
def two_apis(tmp_path_factory):
    """Two services on one host (two ports), as on a workstation running several."""
    servers = [start_api(tmp_path_factory.mktemp(f"api{n}")) for n in range(2)]
    yield servers
    for server in servers:
        server.stop()


def test_another_local_page_receives_a_session_id_it_cannot_use_as_the_token(two_apis, browser):
    api, other = two_apis
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{api.base}/docs?token={TOKEN}")  # the user opens the printed URL
        with attacker_site("<p>an innocent page</p>") as site:
            page.goto(site.url)  # then visits another page served on this host
        received = SimpleCookie()
        received.load(site.cookies[-1])
    finally:
        context.close()
    name = cookie_name(_port(api))
    assert name in received, site.cookies  # browsers do send it to every port
    stolen = received[name].value
    assert TOKEN not in stolen and stolen.startswith("v1.")
    items = "/api/items"
    assert httpx.get(api.base + items, cookies={name: stolen}).status_code == 200  # the user's own session
    assert httpx.get(api.base + items, headers={"Authorization": f"Bearer {stolen}"}).status_code == 401
    assert httpx.get(api.base + items, params={"token": stolen}).status_code == 401
    # Not on another service of this host either (bound to the port it was made for).
    assert httpx.get(other.base + items, cookies={cookie_name(_port(other)): stolen}).status_code == 401


def test_the_session_expires_and_is_renewed_while_used(tmp_path):
    api = start_api(tmp_path, env={"SLICER_CLOUD_SESSION_COOKIE_TTL_S": "4"})
    try:
        port = _port(api)
        login = httpx.get(f"{api.base}/docs", params={"token": TOKEN})
        assert login.status_code == 302 and "Max-Age=4" in login.headers["set-cookie"]
        session = _set_cookie(login, port)
        first = httpx.get(api.base + "/api/items", cookies={cookie_name(port): session})
        assert first.status_code == 200
        # Half its life gone, a request gets a fresh one.
        renewed = wait_for(lambda: (r := httpx.get(api.base + "/api/items", cookies={cookie_name(port): session}))
                           .headers.get("set-cookie") and r, timeout_s=30)  # fmt: skip
        assert _set_cookie(renewed, port) != session
        refused = wait_for(lambda: (r := httpx.get(api.base + "/api/items", cookies={cookie_name(port): session}))
                           .status_code == 401 and r, timeout_s=30)  # fmt: skip
        assert "expired" in refused.json()["detail"]
    finally:
        api.stop()


def test_session_ids_are_bound_to_their_port_and_lifetime():
    sessions = CookieSessions(8080, ttl_s=60)
    value = sessions.issue(now=1000.0)
    assert sessions.remaining_s(value, now=1000.0) == pytest.approx(60)
    assert sessions.remaining_s(value, now=1061.0) == 0  # expired
    assert CookieSessions(8081, ttl_s=60).remaining_s(value, now=1000.0) == 0  # another port
    forged = re.sub(r"^v1\.(\d+)", lambda m: f"v1.{int(m.group(1)) + 3600}", value)  # a later expiry
    assert sessions.remaining_s(forged, now=1000.0) == 0
    assert CookieSessions(8080, ttl_s=60, key=b"another process").remaining_s(value, now=1000.0) == 0
    assert sessions.remaining_s("not.a.session.id", now=1000.0) == 0
