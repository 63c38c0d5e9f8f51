"""Behind ``slicer-cloud serve``, jupyter-server-proxy skips Jupyter's XSRF check for proxied
routes and adds the service's secret to what it forwards: a cross-site request that carries
Jupyter's login cookie must still not upload, start or connect anything. Checked by the one
shared rule (slicer_cloud.security) in each service, with a real Jupyter Server in front."""

from __future__ import annotations

import pytest
import requests

from tests.jupyter.conftest import TOKEN, Served, served, ws_handshake  # noqa: F401 - served is a fixture

CROSS_SITE = [
    {"Origin": "null"},  # a sandboxed frame's form
    {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://127.0.0.1:1"},  # another local page (same site: the cookie goes along)
    {"Sec-Fetch-Site": "same-site"},
]


@pytest.fixture(scope="module")
def jupyter_cookie(served: Served) -> str:
    """The cookie a browser holds once logged in to Jupyter."""
    browser = requests.Session()
    assert browser.get(served.root + f"slicer/?token={TOKEN}", timeout=30).status_code == 200
    return "; ".join(f"{c.name}={c.value}" for c in browser.cookies)


@pytest.mark.parametrize("forged", CROSS_SITE, ids=["null", "null-cross-site", "other-port", "same-site-no-origin"])
def test_cross_site_posts_with_jupyters_cookie_upload_nothing(served: Served, jupyter_cookie: str, forged: dict):
    login = served.session()
    for name in ("slicer-api/api/items", "slicer-viewer/api/health"):  # started by the user, as usual
        assert login.get(served.root + name, timeout=180).status_code == 200
    headers = {"Cookie": jupyter_cookie, **forged}
    api = requests.post(served.root + "slicer-api/api/items?kind=file", files={"file": ("evil.txt", b"x\n")},
                        headers=headers, allow_redirects=False, timeout=60)  # fmt: skip
    viewer = requests.post(served.root + "slicer-viewer/api/upload?name=evil.txt", data=b"x\n", headers=headers,
                           allow_redirects=False, timeout=60)  # fmt: skip
    assert (api.status_code, viewer.status_code) == (403, 403), (api.text, viewer.text)
    listed = login.get(served.root + "slicer-api/api/items", timeout=60).json()["items"]
    assert "evil.txt" not in [item["name"] for item in listed]
    assert not list(served.data.glob(".uploads/*/evil.txt"))
    # The same cookie with the page's own origin passes: the refusals above are the cross-site rule.
    own = requests.get(served.root + "slicer-api/api/items", headers={"Cookie": jupyter_cookie,
                       "Origin": served.root.rstrip("/")}, timeout=60)  # fmt: skip
    assert own.status_code == 200


def test_a_null_origin_websocket_with_jupyters_cookie_does_not_reach_the_desktop(served: Served, jupyter_cookie: str):
    assert served.session().get(served.root + "slicer-desktop/", timeout=180).status_code == 200
    url = f"ws://127.0.0.1:{served.port}/slicer-desktop/websockify"
    status, first = ws_handshake(url, headers={"Cookie": jupyter_cookie, "Origin": "null"}, protocols=("binary",))
    assert status in (401, 403) and not first.startswith(b"RFB")
