"""``slicer-cloud hub`` with two users (the demo authenticator and spawner): each gets a working
portal and viewer; neither reaches the other's server, viewer, desktop or API, by page, by
websocket or around the proxy; a crashed viewer harms neither the other user nor the hub."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from slicer_cloud.desktop import proctree
from tests.conftest import RunningService, start_service
from tests.jupyter.conftest import free_port, write_volume, ws_handshake

PASSWORD = "hub-test-password"
USERS = ("alice", "bob")
SPAWN_WAIT_S = 180

DEMO_CONFIG = Path(__file__).parents[2] / "examples" / "hub" / "demo_config.py"
# The documented demo configuration, as shipped, plus the test's own folders and users.
CONFIG = """
load_subconfig({demo!r})
c.Authenticator.allowed_users = {users!r}
c.Spawner.environment = {{"SLICER_CLOUD_SPARE_SESSIONS": "0", "JUPYTER_CONFIG_DIR": {config_dir!r}}}
"""


@dataclass
class Hub:
    service: RunningService
    root: str
    users_dir: Path

    def login(self, user: str) -> requests.Session:
        """Log in through the hub's login form, as a browser does."""
        session = requests.Session()
        session.get(self.root + "hub/login", timeout=30)
        form = {"username": user, "password": PASSWORD, "_xsrf": session.cookies.get("_xsrf")}
        response = session.post(self.root + "hub/login", data=form, timeout=SPAWN_WAIT_S)
        assert response.status_code == 200, response.text[:500]
        return session

    def open_portal(self, session: requests.Session, user: str) -> requests.Response:
        deadline = time.monotonic() + SPAWN_WAIT_S
        while time.monotonic() < deadline:  # the first visit waits for the server to spawn
            response = session.get(f"{self.root}user/{user}/slicer/", timeout=60)
            if response.status_code == 200 and "slicer-api" in response.text:
                return response
            time.sleep(1)
        raise AssertionError(f"{user}'s portal never answered: {response.status_code} {response.url}")

    def service_port(self, user: str, name: str) -> int:
        found = re.findall(rf"Serving on http://127\.0\.0\.1:(\d+)/user/{user}/slicer-{name}/", self.service.log())
        assert found, f"no {name} of {user} in the hub's log"
        return int(found[-1])


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator[Hub]:
    base = tmp_path_factory.mktemp("hub")
    users_dir = base / "users"
    for user in USERS:
        write_volume(users_dir / user, "ct.nrrd")
    config = base / "hub_config.py"
    config.write_text(CONFIG.format(demo=str(DEMO_CONFIG), users=set(USERS), config_dir=str(base / "jupyter-config")))
    port = free_port()
    env = {"SLICER_CLOUD_HUB_DEMO_PASSWORD": PASSWORD, "SLICER_CLOUD_HUB_USERS_DIR": str(users_dir)}
    service = start_service(["hub", "--port", str(port), "--config", str(config), "--state", str(base / "state")],
                            cwd=base, log_path=base / "hub.log", env=env, timeout=300)
    try:
        yield Hub(service, f"http://127.0.0.1:{port}/", users_dir)
    finally:
        tree = [info.pid for info in proctree.descendants(service.process.pid)]
        service.stop()
        for pid in tree:  # anything the hub failed to stop is ours to end
            if proctree.read_proc(pid) is not None:
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def sessions(hub: Hub) -> dict[str, requests.Session]:
    logged_in = {user: hub.login(user) for user in USERS}
    for user, session in logged_in.items():
        hub.open_portal(session, user)
    return logged_in


def test_each_user_gets_a_working_portal_and_viewer(hub: Hub, sessions):
    for user, session in sessions.items():
        files = session.get(f"{hub.root}user/{user}/slicer/files", timeout=30).json()
        assert files["root"] == str((hub.users_dir / user).resolve())
        assert [f["path"] for f in files["files"]] == ["ct.nrrd"]
        assert session.get(f"{hub.root}user/{user}/slicer-api/api/health", timeout=120).json()["status"] == "ok"
        viewer = session.get(f"{hub.root}user/{user}/slicer-viewer/?open=ct.nrrd", allow_redirects=False, timeout=120)
        assert viewer.status_code == 302 and viewer.headers["Location"].startswith(f"/user/{user}/slicer-viewer/s/")
        page = session.get(hub.root.rstrip("/") + viewer.headers["Location"], timeout=120)
        assert page.status_code == 200


@pytest.mark.parametrize("path", ["slicer/", "slicer/files", "slicer-viewer/", "slicer-desktop/", "slicer-api/api/items", "api/contents"])
def test_a_user_cannot_reach_another_users_pages(hub: Hub, sessions, path: str):
    alice = sessions["alice"]
    response = alice.get(f"{hub.root}user/bob/{path}", timeout=60)  # redirects followed, as a browser would
    assert response.status_code in (403, 404), (response.status_code, response.url)
    assert "ct.nrrd" not in response.text
    posted = alice.post(f"{hub.root}user/bob/{path}", json={}, allow_redirects=False, timeout=60)
    assert posted.status_code in (302, 403, 404)
    if posted.status_code == 302:
        assert not posted.headers["Location"].startswith("/user/bob/")


@pytest.mark.parametrize("path", ["slicer-viewer/s/0123456789abcdef/ws", "slicer-desktop/websockify", "api/kernels/x/channels"])
def test_a_user_cannot_open_another_users_websockets(hub: Hub, sessions, path: str):
    alice = sessions["alice"]
    cookie = "; ".join(f"{c.name}={c.value}" for c in alice.cookies)
    origin = hub.root.rstrip("/")
    status, _ = ws_handshake(f"{hub.root.replace('http', 'ws', 1)}user/bob/{path}", headers={"Cookie": cookie, "Origin": origin})
    assert status in (302, 401, 403, 404)


def test_a_user_cannot_reach_another_users_services_around_the_proxy(hub: Hub, sessions):
    alice = sessions["alice"]
    bob = sessions["bob"]
    bob.get(f"{hub.root}user/bob/slicer-desktop/", timeout=120)  # started by bob
    for name in ("viewer", "api", "desktop"):
        port = hub.service_port("bob", name)
        # Through alice's own server's generic port proxy: bob's service wants bob's secret.
        via_alice = alice.get(f"{hub.root}user/alice/proxy/{port}/user/bob/slicer-{name}/", allow_redirects=False, timeout=60)
        assert via_alice.status_code in (401, 403), (name, via_alice.status_code)
        direct = requests.get(f"http://127.0.0.1:{port}/user/bob/slicer-{name}/", allow_redirects=False, timeout=30)
        assert direct.status_code in (401, 403), (name, direct.status_code)


def launcher_pids(user: str, service: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"slicer_cloud.jupyter.launch" in argv and service.encode() in argv and f"/user/{user}/slicer-{service}/".encode() in argv:
            found.append(int(cmdline.parent.name))
    return found


def test_a_crashed_viewer_harms_neither_the_other_user_nor_the_hub(hub: Hub, sessions):
    alice, bob = sessions["alice"], sessions["bob"]
    pids = launcher_pids("bob", "viewer")
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)
    assert hub.service.process.poll() is None
    assert requests.get(hub.root + "hub/api/", timeout=30).status_code == 200
    again = alice.get(f"{hub.root}user/alice/slicer-viewer/", allow_redirects=False, timeout=120)
    assert again.status_code == 302 and "/user/alice/slicer-viewer/s/" in again.headers["Location"]
    assert alice.get(f"{hub.root}user/alice/slicer/files", timeout=30).status_code == 200
    # Bob's server starts his viewer again on his next visit.
    deadline = time.monotonic() + 120
    status = None
    while time.monotonic() < deadline:
        status = bob.get(f"{hub.root}user/bob/slicer-viewer/", allow_redirects=False, timeout=120).status_code
        if status == 302:
            break
        time.sleep(1)
    assert status == 302


def test_a_users_own_websockets_open_with_the_same_credentials(hub: Hub, sessions):
    # The control for the refusals above: the same cookie and origin open alice's own desktop.
    alice = sessions["alice"]
    assert alice.get(f"{hub.root}user/alice/slicer-desktop/", timeout=120).status_code == 200
    cookie = "; ".join(f"{c.name}={c.value}" for c in alice.cookies)
    status, first = ws_handshake(f"{hub.root.replace('http', 'ws', 1)}user/alice/slicer-desktop/websockify",
                                 headers={"Cookie": cookie, "Origin": hub.root.rstrip("/")}, protocols=("binary",))
    assert status == 101 and first.startswith(b"RFB 003.")


def singleuser_pids(user: str) -> list[int]:
    """The user's single-user server processes (the hub starts them with JUPYTERHUB_USER set)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            argv = (environ.parent / "cmdline").read_bytes().split(b"\0")
            if b"slicer_cloud.hub.singleuser" in argv and f"JUPYTERHUB_USER={user}".encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def test_a_killed_single_user_server_is_noticed_and_started_again(hub: Hub, sessions):
    # Last in the module: it takes bob's server away. kill -9 of his Jupyter server must leave
    # the hub and alice working, and bob gets a fresh server when he asks for one.
    alice, bob = sessions["alice"], sessions["bob"]
    pids = singleuser_pids("bob")
    assert len(pids) == 1, pids
    services = [info.pid for info in proctree.descendants(pids[0])]
    assert len(launcher_pids("bob", "viewer")) == 1 and services
    os.kill(pids[0], signal.SIGKILL)
    # Its services (viewer, desktop, API launched by jupyter-server-proxy) end with it, not orphaned.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(proctree.read_proc(pid) for pid in services):
        time.sleep(0.5)
    left = [pid for pid in services if proctree.read_proc(pid)]
    for pid in left:  # a leftover is a failure below; end it so it cannot disturb other tests
        os.kill(pid, signal.SIGKILL)
    assert not left, f"services outlived bob's server: {left}"
    assert hub.service.process.poll() is None
    assert requests.get(hub.root + "hub/api/", timeout=30).status_code == 200
    assert alice.get(f"{hub.root}user/alice/slicer/files", timeout=60).status_code == 200
    # The hub notices the server is gone (its proxy target is dead) and says so instead of hanging.
    deadline = time.monotonic() + SPAWN_WAIT_S
    noticed = None
    while time.monotonic() < deadline:
        noticed = bob.get(f"{hub.root}user/bob/slicer/files", allow_redirects=True, timeout=60)
        if noticed.status_code != 200 and "/hub/" in noticed.url:
            break
        time.sleep(1)
    assert noticed is not None and noticed.status_code != 200 and "/hub/" in noticed.url, (noticed.status_code, noticed.url)
    assert "not running" in noticed.text.lower() or "start" in noticed.text.lower()
    # Starting it again from the hub gives bob a new server with his files.
    bob.get(f"{hub.root}hub/spawn/bob", timeout=SPAWN_WAIT_S)
    hub.open_portal(bob, "bob")
    files = bob.get(f"{hub.root}user/bob/slicer/files", timeout=60).json()
    assert [f["path"] for f in files["files"]] == ["ct.nrrd"]
    new = singleuser_pids("bob")
    assert len(new) == 1 and new[0] != pids[0]
