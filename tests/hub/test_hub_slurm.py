"""``slicer-cloud hub`` with the SLURM profile (examples/hub/slurm_config.py) on a real
single-node SLURM: a user logs in, chooses the job's resources in the spawn form, their
slicer-cloud server runs as a SLURM job and serves the portal and the viewer through the hub's
proxy with the same login; a bad form value is refused with the reason; when the idle culler
stops the server, its SLURM job ends."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from slicer_cloud.desktop import proctree
from tests.conftest import start_service
from tests.jupyter.conftest import free_port, write_volume
from tests.slurm import Slurm, running_slurm

PASSWORD = "slurm-hub-test-password"
USER = "alice"
WAIT_S = 240
SLURM_CONFIG = Path(__file__).parents[2] / "examples" / "hub" / "slurm_config.py"
# The documented SLURM configuration, as shipped, plus what a test on one machine needs: the demo
# login, jobs as the hub's account in per-user folders, and the node reached on loopback.
CONFIG = """
load_subconfig({slurm!r})
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allowed_users = {{{user!r}}}
c.SlicerCloudSlurmSpawner.exec_prefix = ""
c.SlicerCloudSlurmSpawner.home_dir_template = {home!r}
c.SlicerCloudSlurmSpawner.server_ip = "127.0.0.1"
c.SlicerCloudSlurmSpawner.node_addresses = {{{node!r}: "127.0.0.1"}}
c.SlicerCloudSlurmSpawner.max_cores = 2
c.SlicerCloudSlurmSpawner.max_memory_gib = 4
c.Spawner.environment = {{"SLICER_CLOUD_SPARE_SESSIONS": "0", "JUPYTER_CONFIG_DIR": {config_dir!r}}}
c.JupyterHub.last_activity_interval = 5  # the proxy's record of the user's requests reaches the culler soon
"""
IDLE_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def slurm() -> Iterator[Slurm]:
    with running_slurm() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def hub(tmp_path_factory, slurm: Slurm):
    base = tmp_path_factory.mktemp("slurm-hub")
    users = base / "users"
    write_volume(users / USER, "ct.nrrd")
    config = base / "hub_config.py"
    config.write_text(CONFIG.format(slurm=str(SLURM_CONFIG), password=PASSWORD, user=USER, home=str(users / "{username}"),
                                    node=socket.gethostname(), config_dir=str(base / "jupyter-config")))
    port = free_port()
    service = start_service(["hub", "--port", str(port), "--config", str(config), "--state", str(base / "state")],
                            cwd=base, log_path=base / "hub.log", timeout=300,
                            env={**slurm.env, "SLICER_CLOUD_HUB_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S), "SLICER_CLOUD_HUB_CULL_EVERY_S": "5"})
    try:
        yield f"http://127.0.0.1:{port}/", service, users
    finally:
        tree = [info.pid for info in proctree.descendants(service.process.pid)]
        service.stop()
        for pid in tree:
            if proctree.read_proc(pid) is not None:
                os.kill(pid, signal.SIGKILL)
        for job in slurm.jobs():  # a server job the hub failed to cancel
            slurm.command("scancel", job["id"])


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile
        return b""


def hub_xsrf(session: requests.Session) -> str | None:
    """The hub's XSRF cookie (the user's server sets one of its own under /user/NAME/)."""
    return next((c.value for c in session.cookies if c.name == "_xsrf" and not c.path.startswith("/user/")), None)


def login(root: str) -> requests.Session:
    session = requests.Session()
    session.get(root + "hub/login", timeout=30)
    response = session.post(root + "hub/login", data={"username": USER, "password": PASSWORD, "_xsrf": hub_xsrf(session)},
                            timeout=WAIT_S)
    assert response.status_code == 200, response.text[:500]
    return session


def spawn_form(session: requests.Session, root: str, **values: str) -> requests.Response:
    form = {"cores": "2", "memory_gib": "2", "hours": "1", "partition": "", **values,
            "_xsrf": hub_xsrf(session)}
    return session.post(f"{root}hub/spawn/{USER}", data=form, timeout=WAIT_S)


def test_a_users_server_runs_as_a_slurm_job_and_serves_the_viewer(hub, slurm: Slurm):
    root, service, users = hub
    session = login(root)
    form = session.get(f"{root}hub/spawn/{USER}", timeout=60)
    assert form.status_code == 200 and 'name="cores"' in form.text and 'name="memory_gib"' in form.text

    refused = spawn_form(session, root, cores="64")
    assert "CPU cores: choose between 1 and 2 (got 64)" in refused.text
    assert slurm.jobs() == []  # nothing was submitted

    spawn_form(session, root, cores="2", memory_gib="3", hours="1.5")
    deadline = time.monotonic() + WAIT_S
    portal = None
    while time.monotonic() < deadline:  # the first visit waits for the job to start and report its port
        portal = session.get(f"{root}user/{USER}/slicer/", timeout=60)
        if portal.status_code == 200 and "slicer-api" in portal.text:
            break
        time.sleep(1)
    assert portal is not None and portal.status_code == 200 and "slicer-api" in portal.text, service.log()[-3000:]

    jobs = slurm.jobs()
    assert len(jobs) == 1 and jobs[0]["state"] == "RUNNING"
    job_id = jobs[0]["id"]
    booked = slurm.command("squeue", "--noheader", "--format=%C|%m|%l", "--jobs", job_id).strip()
    assert booked == "2|3G|1:30:00"  # what the form asked for
    hub_children = {p.pid for p in proctree.descendants(service.process.pid)}
    servers = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if b"batchspawner-singleuser" in cmdline(pid)]
    assert servers and not hub_children & set(servers)  # the server runs under slurmd, not under the hub

    files = session.get(f"{root}user/{USER}/slicer/files", timeout=60).json()
    assert files["root"] == str((users / USER).resolve()) and [f["path"] for f in files["files"]] == ["ct.nrrd"]
    viewer = session.get(f"{root}user/{USER}/slicer-viewer/?open=ct.nrrd", allow_redirects=False, timeout=120)
    assert viewer.status_code == 302 and viewer.headers["Location"].startswith(f"/user/{USER}/slicer-viewer/s/")
    assert session.get(root.rstrip("/") + viewer.headers["Location"], timeout=120).status_code == 200
    # Without the login, the hub's proxy sends a visitor to the login page, not to the job.
    anonymous = requests.get(f"{root}user/{USER}/slicer/files", allow_redirects=False, timeout=60)
    assert anonymous.status_code in (302, 401, 403) and "ct.nrrd" not in anonymous.text

    # Left alone, the server is culled as idle, and its SLURM job ends with it.
    deadline = time.monotonic() + IDLE_TIMEOUT_S + WAIT_S
    while time.monotonic() < deadline and any(j["id"] == job_id for j in slurm.jobs()):
        time.sleep(2)
    assert not any(j["id"] == job_id for j in slurm.jobs()), service.log()[-3000:]
    assert f"Culling server {USER}" in service.log()  # the idle culler stopped it, nothing else did
    assert requests.get(f"{root}user/{USER}/slicer/files", cookies=session.cookies, allow_redirects=False, timeout=60).status_code != 200
