"""The supervisor's contract, on real processes: two desktops side by side, Slicer found and given
its arguments and working folder, a program that exits restarted, a dead X server reported with
the service ending and leaving no process behind.

The Slicer desktop binary cannot run here, so a stand-in script plays it: it records its
arguments and folder, and forks off a daemon in a session of its own (as real programs do) to
check that stopping the desktop ends even that one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
import requests

from slicer_cloud.desktop import proctree
from slicer_cloud.desktop.supervisor import ProgramSpec, Supervisor

STAND_IN = """#!/bin/sh
# Stands in for Slicer: records how it was started, leaves a daemon behind, then waits.
out="{record}"
pwd > "$out.partial"
printf '%s\\n' "$@" >> "$out.partial"
mv "$out.partial" "$out"
setsid sleep 600 > /dev/null 2>&1 < /dev/null &
echo $! > "{daemon}"
exec sleep 600
"""


def wait_for(predicate, what: str, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    return proctree.read_proc(pid) is not None


@pytest.fixture(scope="module")
def slicer_desktop(tmp_path_factory, launch_desktop):
    tmp = tmp_path_factory.mktemp("slicer-desktop")
    record, daemon = tmp / "started-with.txt", tmp / "daemon.pid"
    stand_in = tmp / "bin" / "Slicer"
    stand_in.parent.mkdir()
    stand_in.write_text(STAND_IN.format(record=record, daemon=daemon))
    stand_in.chmod(0o755)
    running = launch_desktop(
        tmp, "--slicer", str(stand_in), "--geometry", "800x600", "--", "--no-splash", "--python-code", "print('a b')"
    )
    running.record, running.daemon = record, daemon
    yield running
    running.stop()
    if daemon.exists() and alive(int(daemon.read_text())):
        os.kill(int(daemon.read_text()), signal.SIGKILL)


def test_slicer_gets_its_arguments_and_the_data_folder(slicer_desktop):
    lines = wait_for(lambda: slicer_desktop.record.exists() and slicer_desktop.record.read_text().splitlines(), "Slicer to start")
    assert Path(lines[0]).resolve() == slicer_desktop.data_dir.resolve()
    assert lines[1:] == ["--no-splash", "--python-code", "print('a b')"]
    status = slicer_desktop.status()
    assert status["mode"] == "slicer" and status["slicer_installed"] is True and status["message"] == ""


def test_two_desktops_do_not_collide(desktop, slicer_desktop):
    a, b = desktop.status(), slicer_desktop.status()
    assert a["display"] != b["display"]
    assert desktop.base != slicer_desktop.base
    assert a["programs"][0]["pid"] != b["programs"][0]["pid"]


def test_a_program_that_exits_is_restarted(slicer_desktop):
    first = slicer_desktop.program_pid("Slicer")
    slicer_desktop.record.unlink()
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: slicer_desktop.program_pid("Slicer") != first, "Slicer to be restarted")
    wait_for(slicer_desktop.record.exists, "the restarted Slicer to run")
    assert "Slicer was killed by SIGKILL; restarting it" in slicer_desktop.stderr()
    assert slicer_desktop.process.poll() is None


def test_killing_the_x_server_ends_the_service_cleanly(slicer_desktop):
    daemon = int(wait_for(lambda: slicer_desktop.daemon.exists() and slicer_desktop.daemon.read_text().strip(), "the daemon"))
    tree = {p.pid for p in proctree.descendants(slicer_desktop.pid)} | {daemon}
    assert alive(daemon) and len(tree) >= 4  # Xvnc, openbox, Slicer, its daemon
    os.kill(slicer_desktop.program_pid("X server"), signal.SIGKILL)
    code = slicer_desktop.process.wait(timeout=60)
    assert code != 0
    assert "X server (Xvnc) was killed by SIGKILL; the desktop cannot run without it" in slicer_desktop.stderr()
    left = [pid for pid in tree if alive(pid)]
    assert left == [], f"processes left behind: {[proctree.read_proc(p) for p in left]}"


def test_a_program_that_keeps_failing_ends_the_service(run_async):
    async def scenario() -> str:
        supervisor = Supervisor(max_restarts=2, restart_window_s=60, stop_timeout_s=2)
        await supervisor.start(ProgramSpec(name="flaky", argv=["sh", "-c", "echo broken config; exit 3"]))
        try:
            return await asyncio.wait_for(supervisor.failure, 30)
        finally:
            await supervisor.stop(sweep_descendants=False)

    reason = run_async(scenario())
    assert "flaky exited with code 3 (3 times within 60 s); giving up" in reason
    assert "broken config" in reason


def test_stopping_with_a_browser_connected_closes_it_and_leaves_nothing(tmp_path, launch_desktop, run_async):
    import aiohttp

    running = launch_desktop(tmp_path, "--app", "sleep 600", "--geometry", "640x480", "--base-url", "desk")
    try:
        # Behind a path prefix: everything lives under it, the bare prefix redirects to it.
        assert running.base.endswith("/desk/")
        auth = {"Authorization": f"Bearer {running.token}"}
        assert requests.get(running.base, headers=auth, timeout=10).status_code == 200
        bare = requests.get(running.base.rstrip("/"), headers=auth, timeout=10, allow_redirects=False)
        assert bare.status_code == 302 and bare.headers["Location"] == "/desk/"
        assert requests.get(running.base.replace("/desk/", "/"), headers=auth, timeout=10).status_code == 404
        tree = {p.pid for p in proctree.descendants(running.pid)}
        ws_url = running.base.replace("http://", "ws://") + "websockify"

        async def connect_then_stop() -> tuple[bytes, int | None]:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(ws_url, headers={"Authorization": f"Bearer {running.token}"}) as ws:
                    greeting = (await asyncio.wait_for(ws.receive(), 10)).data
                    os.kill(running.pid, signal.SIGTERM)
                    while (await asyncio.wait_for(ws.receive(), 30)).type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        pass
                    return greeting, ws.close_code

        greeting, close_code = run_async(connect_then_stop())
        assert greeting.startswith(b"RFB ")
        assert close_code == 1001  # "going away": the page then tries to reconnect
        assert running.process.wait(timeout=30) == 0
        assert "Stopping the desktop" in running.stderr()
        assert [pid for pid in tree if alive(pid)] == []
    finally:
        running.stop()


def test_output_is_drained_and_its_tail_kept(run_async):
    async def scenario() -> tuple[str, int]:
        supervisor = Supervisor(max_restarts=0, restart_window_s=60, stop_timeout_s=2)
        # 1 MiB on one line, far past a pipe's buffer: the program must not block on it.
        script = "head -c 1048576 /dev/zero | tr '\\\\0' x; echo; echo last words; exit 4"
        await supervisor.start(ProgramSpec(name="chatty", argv=["sh", "-c", script]))
        try:
            reason = await asyncio.wait_for(supervisor.failure, 60)
        finally:
            await supervisor.stop(sweep_descendants=False)
        return reason, max(len(line) for line in supervisor.programs[0].output)

    reason, longest = run_async(scenario())
    assert "chatty exited with code 4" in reason and reason.endswith("last words")
    assert longest <= 2000
