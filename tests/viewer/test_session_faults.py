"""kill -9 of one viewer session process: its tab is told the session ended and can open a new
one; the other tab's session and the gateway are unaffected."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import requests

from tests.compute.conftest import pid_alive, wait_for
from tests.conftest import start_service

TOKEN = "fault-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    data = tmp_path_factory.mktemp("fault-data")
    service = start_service(
        ["view", "--data", str(data), "--port", "0", "--token", TOKEN, "--no-open"],
        cwd=data,
        log_path=tmp_path_factory.mktemp("fault-log") / "viewer.log",
        # a busy machine can take minutes to start a session; the test is about what happens after
        env={"SLICER_CLOUD_SPARE_SESSIONS": "0", "SLICER_CLOUD_SESSION_START_TIMEOUT_S": "600"},
    )
    yield service
    service.stop()


def _session_pids(gateway_pid: int) -> dict[int, int]:
    """port -> pid of the session processes the gateway started."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if parent == gateway_pid and b"slicer_cloud.viewer.session" in argv:
            found[int(argv[argv.index(b"--port") + 1])] = int(entry.name)
    return found


def _open_tab(gateway) -> str:
    reply = requests.get(gateway.base, headers=HEADERS, allow_redirects=False, timeout=660)
    assert reply.status_code == 302, reply.text
    return reply.headers["Location"]


def test_kill_9_of_a_session_ends_only_its_tab(gateway):
    first, second = _open_tab(gateway), _open_tab(gateway)
    page = lambda location: requests.get(gateway.base.rstrip("/") + location, headers=HEADERS, allow_redirects=False, timeout=60)  # noqa: E731
    assert page(first).status_code < 400 and page(second).status_code < 400  # the page (or its redirect)
    before = _session_pids(gateway.process.pid)
    assert len(before) == 2
    victim = max(before.values())  # one of the two (which tab's, the pages tell)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: not pid_alive(victim), timeout_s=30)

    # the killed tab, reloaded, is told so with a way to a new session; the other goes on
    statuses = wait_for(lambda: (got := {t: page(t) for t in (first, second)}) and
                        sorted(r.status_code == 404 for r in got.values()) == [False, True] and got, timeout_s=90)
    [ended] = [r for r in statuses.values() if r.status_code == 404]
    [alive] = [t for t, r in statuses.items() if r.status_code != 404]
    assert "This viewer session has ended" in ended.text and "Open a new one" in ended.text
    assert page(alive).status_code < 400
    assert _session_pids(gateway.process.pid).keys() == {p for p, pid in before.items() if pid != victim}
    assert requests.get(gateway.base + "api/health", timeout=30).json()["status"] == "ok"
    third = _open_tab(gateway)
    assert page(third).status_code < 400
    assert gateway.process.poll() is None
