"""Fixtures for the remote desktop: real services (Xvnc, openbox, the programs, the web side)
started as `slicer-cloud desktop` processes on free loopback ports, stopped by their PID.
The browser is the suite's shared headless Chromium (tests/conftest.py)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from slicer_cloud.desktop import proctree


@dataclass
class Desktop:
    """A running `slicer-cloud desktop` process."""

    process: subprocess.Popen
    url: str  # with ?token=
    base: str  # without the token
    token: str
    stderr_path: Path
    data_dir: Path
    tree: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def status(self) -> dict:
        response = requests.get(self.base + "status", headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        response.raise_for_status()
        return response.json()

    def program_pid(self, name: str) -> int:
        for program in self.status()["programs"]:
            if program["name"].startswith(name):
                return program["pid"]
        raise AssertionError(f"no program {name!r} in {self.status()['programs']}")

    def x_env(self) -> dict[str, str]:
        """The environment of an X client on this desktop (DISPLAY and XAUTHORITY)."""
        environ = Path(f"/proc/{self.program_pid('window manager')}/environ").read_bytes().split(b"\0")
        pairs = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
        return dict(os.environ, DISPLAY=self.status()["display"], XAUTHORITY=pairs["XAUTHORITY"])

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        # Whatever the service left behind (it should be nothing) is ours to end.
        for pid in self.tree:
            if proctree.read_proc(pid) is not None:
                os.kill(pid, signal.SIGKILL)


def start_desktop(tmp: Path, *args: str, token: str = "desk-token-1", env: dict[str, str] | None = None) -> Desktop:
    data_dir = tmp / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    stderr_path = tmp / "desktop.stderr"
    command = [sys.executable, "-m", "slicer_cloud.cli", "desktop", "--port", "0", "--token", token, "--data", str(data_dir)]
    process_env = dict(os.environ if env is None else env)
    # A private cache: no Slicer installed by a user's install-slicer is found by accident.
    process_env.setdefault("SLICER_CLOUD_CACHE_DIR", str(tmp / "cache"))
    process_env.pop("SLICER_EXECUTABLE", None)
    process = subprocess.Popen(
        command + list(args),
        stdout=subprocess.PIPE,
        stderr=open(stderr_path, "wb"),
        stdin=subprocess.DEVNULL,
        env=process_env,
        text=True,
    )
    deadline = time.monotonic() + 90
    url = None
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        match = re.search(r"Serving on (\S+)", line)
        if match:
            url = match.group(1)
            break
    if url is None:
        process.kill()
        process.wait(timeout=10)
        raise AssertionError(f"the desktop did not start:\n{stderr_path.read_text(errors='replace')}")
    desktop = Desktop(process=process, url=url, base=url.split("?")[0], token=token, stderr_path=stderr_path, data_dir=data_dir)
    desktop.tree = [p.pid for p in proctree.descendants(process.pid)]
    return desktop


@pytest.fixture(scope="session")
def run_async():
    """``run_async(coroutine)``: run it to completion on a fresh loop in its own thread (the
    suite's Playwright keeps an event loop running in the main thread)."""

    def run(coroutine, timeout_s: float = 120):
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, coroutine).result(timeout=timeout_s)

    return run


@pytest.fixture(scope="session")
def launch_desktop():
    """``launch_desktop(tmp, *options)``: start a desktop; the caller stops it."""
    return start_desktop


@pytest.fixture(scope="module")
def desktop(tmp_path_factory) -> Desktop:
    """The default desktop: no Slicer here, so the fallback (terminal + viewer)."""
    running = start_desktop(tmp_path_factory.mktemp("desktop"), "--geometry", "1280x720")
    yield running
    running.stop()
