"""The compose deployment for real: the image built from deploy/docker/Dockerfile, a real Docker
engine, `docker-compose up` of what `slicer-cloud deploy compose` wrote for localhost, and
Chromium over HTTPS through Caddy. Two users sign up, the admin approves the second, each gets a
container of their own (checked with the Docker API) and sees the sample in the viewer; neither
reaches the other's server; `down` then `up` keeps their accounts and their files.

The first run builds the images (about 6 minutes on 2 cores; cached by a hash of their inputs)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.deploy.deployment import Deployment, contents, log_in, open_sample_in_viewer, sign_up, start_deployment

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]
USERS = ("admin", "student")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    deployment = start_deployment(tmp_path_factory.mktemp("deploy"))
    try:
        deployment.up()
        yield deployment
    finally:
        deployment.remove_everything()


@pytest.fixture(scope="module")
def contexts(browser) -> Iterator[dict]:
    """One browser context (its own cookies) per user; Caddy's certificate is checked by
    requests in the first test, so the browser may skip it."""
    made = {user: browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800}) for user in USERS}
    yield made
    for context in made.values():
        context.close()


def test_https_through_caddy_with_its_internal_ca(deployment: Deployment, tmp_path: Path) -> None:
    root = deployment.caddy_root_certificate(tmp_path)
    response = requests.get(f"{deployment.base}/hub/login", verify=str(root), timeout=30)
    assert response.status_code == 200 and 'name="password"' in response.text
    # the hub's and users' ports are not published: only Caddy's, on loopback
    published = {c.name: c.ports for c in deployment.engine().containers.list() if c.name.startswith(deployment.project)}
    for name, ports in published.items():
        bound = [b for bindings in ports.values() if bindings for b in bindings]
        assert all(b["HostIp"] == "127.0.0.1" for b in bound), (name, ports)
        assert bool(bound) == ("caddy" in name), (name, ports)


def test_sign_up_needs_the_admins_approval(deployment: Deployment, contexts) -> None:
    admin = contexts["admin"].new_page()
    assert "signup was successful" in sign_up(admin, deployment.base, "admin")  # the admin is approved at once
    student = contexts["student"].new_page()
    message = sign_up(student, deployment.base, "student")
    assert "sent to the admin" in message  # waits for approval
    # not approved yet: the login is refused
    student.goto(f"{deployment.base}/hub/login")
    student.fill("#username_input", "student")
    student.fill("#password_input", "correct-horse-battery-7")
    student.click("#login_submit")
    error = student.locator(".login_error")
    error.wait_for(timeout=60_000)
    assert "not been authorized" in error.inner_text()
    assert "/user/student/" not in student.url
    assert not deployment.user_containers()
    # the admin logs in (a container starts for them) and approves the student
    log_in(admin, deployment.base, "admin")
    cookies = {c["name"]: c for c in contexts["admin"].cookies() if c["name"].startswith("jupyterhub")}
    assert {"jupyterhub-hub-login", "jupyterhub-user-admin"} <= set(cookies), cookies
    assert all(c["secure"] for c in cookies.values()), cookies  # never sent over plain HTTP
    assert cookies["jupyterhub-hub-login"]["httpOnly"] and cookies["jupyterhub-user-admin"]["httpOnly"], cookies
    admin.goto(f"{deployment.base}/hub/authorize")
    admin.locator("a[href$='authorize/student']").click()
    admin.wait_for_load_state()
    log_in(student, deployment.base, "student")
    admin.close()
    student.close()


def test_each_user_has_a_container_of_their_own_with_limits(deployment: Deployment) -> None:
    containers = deployment.user_containers()
    assert set(containers) == set(USERS)
    for user, container in containers.items():
        container.reload()
        attrs = container.attrs
        assert container.status == "running"
        assert attrs["Config"]["Image"].startswith("slicer-cloud:")
        assert attrs["Config"]["User"] == "slicer"
        host = attrs["HostConfig"]
        assert host["Memory"] == 2 * 1024**3
        assert host["CpuQuota"] / host["CpuPeriod"] == pytest.approx(1.0)
        assert host["CapDrop"] == ["ALL"]
        [mount] = [m for m in attrs["Mounts"] if m["Destination"] == "/home/slicer/work"]
        assert mount["Type"] == "volume" and mount["Name"] == f"{deployment.project}-user-{user}"
    assert containers["admin"].id != containers["student"].id
    # the image's health check finds each server under its hub prefix
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        states = {user: c.attrs["State"].get("Health", {}).get("Status") for user, c in deployment.user_containers().items()}
        if set(states.values()) == {"healthy"}:
            break
        time.sleep(3)
    assert set(states.values()) == {"healthy"}, states


def test_each_user_opens_the_sample_in_the_viewer(deployment: Deployment, contexts) -> None:
    for user in USERS:
        page = contexts[user].new_page()
        page.goto(f"{deployment.base}/user/{user}/slicer/")
        page.wait_for_selector("body[data-ready=true]", timeout=180_000)
        axial = open_sample_in_viewer(page)
        h, w = axial.shape
        # the body in the middle is brighter than the air around it (the border's median ignores
        # the view's corner annotations)
        border = np.concatenate([axial[:5].ravel(), axial[-5:].ravel(), axial[:, :5].ravel(), axial[:, -5:].ravel()])
        assert axial[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].mean() > np.median(border) + 20
        page.close()


@pytest.mark.parametrize("path", ["slicer/", "slicer/files", "slicer-viewer/", "api/contents"])
def test_a_user_cannot_reach_the_other_users_server(deployment: Deployment, contexts, path: str) -> None:
    page = contexts["student"].new_page()
    response = page.goto(f"{deployment.base}/user/admin/{path}")
    assert response is not None and response.status in (403, 404), (response.status if response else None, page.url)
    assert "sample-ct.nrrd" not in page.content()
    # nor without following redirects, with the student's own login
    direct = contexts["student"].request.get(f"{deployment.base}/user/admin/{path}", max_redirects=0)
    assert direct.status in (302, 403, 404), direct.status
    assert direct.status != 302 or direct.headers["location"].startswith("/hub/"), direct.headers
    assert "sample-ct.nrrd" not in direct.text()
    page.close()


def test_down_then_up_keeps_accounts_and_files(deployment: Deployment, contexts, browser) -> None:
    for user in USERS:
        page = contexts[user].new_page()
        page.goto(f"{deployment.base}/user/{user}/slicer/")
        page.wait_for_selector("body[data-ready=true]", timeout=180_000)
        assert contents(page, deployment.base, user, "notes.txt", f"{user}'s notes")["status"] in (200, 201)
        page.close()
    deployment.compose("down", "--timeout", "60")
    deadline = time.monotonic() + 120
    while deployment.user_containers() and time.monotonic() < deadline:
        time.sleep(1)
    assert not deployment.user_containers()  # the hub stopped every user's container on its way down
    assert deployment.user_volumes() == {f"{deployment.project}-user-{user}" for user in USERS}
    deployment.up()
    for user in USERS:
        context = browser.new_context(ignore_https_errors=True)  # a fresh login after the restart
        page = context.new_page()
        log_in(page, deployment.base, user)  # the student needs no second approval
        note = contents(page, deployment.base, user, "notes.txt", None)
        assert note["status"] == 200 and f"{user}'s notes" in note["body"]
        context.close()
