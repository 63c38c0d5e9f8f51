"""A compose deployment written by ``slicer-cloud deploy compose`` and run by a real Docker engine
on loopback, and what a user does with it in a real Chromium (shared by the end-to-end test and
``benchmarks/deploy.py``)."""

from __future__ import annotations

import re
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from slicer_cloud.deploy.compose import env_file, read_env
from tests.deploy import images
from slicer_cloud.web.serving import free_port

PASSWORD = "correct-horse-battery-7"


@dataclass
class Deployment:
    folder: Path
    project: str
    port: int
    log: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"https://localhost:{self.port}"

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        done = subprocess.run(["docker-compose", *args], cwd=self.folder, capture_output=True, text=True, timeout=timeout)
        self.log.append(f"$ docker-compose {' '.join(args)}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        if done.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)} failed:\n{done.stderr[-4000:]}")
        return done

    def engine(self):
        import docker

        return docker.from_env(timeout=120)

    def user_containers(self) -> dict[str, object]:
        prefix = f"{self.project}-user-"
        return {c.name[len(prefix):]: c for c in self.engine().containers.list(all=True) if c.name.startswith(prefix)}

    def user_volumes(self) -> set[str]:
        prefix = f"{self.project}-user-"
        return {v.name for v in self.engine().volumes.list() if v.name.startswith(prefix)}

    def logs(self) -> str:
        done = subprocess.run(["docker-compose", "logs", "--no-color", "--tail", "80"], cwd=self.folder, capture_output=True, text=True, timeout=120)
        return done.stdout[-8000:]

    def wait_for_login_page(self, timeout: float = 300) -> float:
        """Seconds until the hub's login page answers through Caddy over HTTPS."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                response = requests.get(f"{self.base}/hub/login", verify=False, timeout=10)
                if response.status_code == 200 and "username" in response.text:
                    return time.monotonic() - start
            except requests.RequestException:
                pass
            time.sleep(1)
        raise AssertionError(f"the login page never answered on {self.base}:\n{self.logs()}")

    def caddy_root_certificate(self, into: Path) -> Path:
        """Caddy's internal CA root (for localhost), to check the chain as a client that trusts it."""
        [caddy] = [c for c in self.engine().containers.list() if c.labels.get("com.docker.compose.project") == self.project
                   and c.labels.get("com.docker.compose.service") == "caddy"]
        code, output = caddy.exec_run(["cat", "/data/caddy/pki/authorities/local/root.crt"])
        assert code == 0, output
        path = into / "caddy-root.crt"
        path.write_bytes(output)
        return path

    def up(self) -> float:
        start = time.monotonic()
        self.compose("up", "-d")
        self.wait_for_login_page()
        return time.monotonic() - start

    def remove_everything(self) -> None:
        """Down with the compose volumes, then the users' containers and volumes."""
        subprocess.run(["docker-compose", "down", "-v", "--timeout", "60"], cwd=self.folder, capture_output=True, timeout=600)
        engine = self.engine()
        for container in self.user_containers().values():
            container.remove(force=True)
        for name in self.user_volumes():
            engine.volumes.get(name).remove(force=True)
        for network in engine.networks.list(names=[f"{self.project}-net"]):
            network.remove()


def start_deployment(root: Path, *, cpus: str = "1", memory: str = "2G", build: bool = True) -> Deployment:
    """Build (or reuse) the images (``build=False``: take the tagged ones as they are), write a
    deployment for localhost on free loopback ports."""
    images.ensure_engine()
    if build:
        images.slicer_cloud_images()
    caddy = images.caddy_image()
    folder = root / "site"
    project = f"scdeploy{secrets.token_hex(3)}"
    port = free_port()
    command = [sys.executable, "-m", "slicer_cloud.cli", "deploy", "compose", "--out", str(folder), "--bind", "127.0.0.1",
               "--https-port", str(port), "--http-port", str(free_port()), "--project", project, "--admin", "admin",
               "--cpus-per-user", cpus, "--memory-per-user", memory, "--idle-timeout", "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # The official caddy image cannot be pulled here: Debian's Caddy stands in (same paths).
    values = read_env(folder / ".env")
    values["CADDY_IMAGE"] = caddy
    (folder / ".env").write_text(env_file(values))
    deployment = Deployment(folder=folder, project=project, port=port)
    return deployment


# --- what a user does, in Chromium ---------------------------------------------------------------
def sign_up(page, base: str, user: str) -> str:
    page.goto(f"{base}/hub/signup")
    page.fill("#username_input", user)
    page.fill("#password_input", PASSWORD)
    page.fill("#password_confirmation_input", PASSWORD)
    page.click("#signup_submit")
    alert = page.locator(".alert")
    alert.wait_for(timeout=60_000)
    return alert.inner_text()


def log_in(page, base: str, user: str, timeout_s: float = 400) -> None:
    """Log in and wait for the user's own server's portal (a cold start spawns a container)."""
    page.goto(f"{base}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url(re.compile(re.escape(f"{base}/user/{user}/slicer/")), timeout=timeout_s * 1000)
    page.wait_for_selector("body[data-ready=true]", timeout=180_000)


def open_sample_in_viewer(page, timeout_s: float = 240):
    """From the portal, open the sample in the viewer; returns the first view's pixels."""
    from tests.e2e.test_viewer_browser import wait_for_view

    card = page.locator(".card[data-path='sample-ct.nrrd']")
    card.wait_for(timeout=120_000)
    with page.context.expect_page(timeout=120_000) as opened:
        card.locator("a.open-viewer").click()
    viewer = opened.value
    try:
        return wait_for_view(viewer, 0, timeout=timeout_s)
    finally:
        viewer.close()


def contents(page, base: str, user: str, path: str, text: str | None = None) -> dict:
    """Jupyter's contents API from the page, with the page's own login (and XSRF token)."""
    script = """async ([url, text]) => {
        const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || '';
        // the XSRF header on GET too: JupyterHub refuses cookie-authenticated fetches without it
        const headers = {'X-XSRFToken': decodeURIComponent(xsrf)};
        const init = text === null ? {headers} : {method: 'PUT', headers: {...headers, 'Content-Type': 'application/json'},
                                                  body: JSON.stringify({type: 'file', format: 'text', content: text})};
        const r = await fetch(url, init);
        return {status: r.status, body: await r.text()};
    }"""
    return page.evaluate(script, [f"{base}/user/{user}/api/contents/{path}", text])
