"""Fixtures of the compute tests: small volumes with known answers and real API servers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from slicer_cloud.compute.imageio import Volume, write_volume

MODULES_DIR = Path(__file__).parent / "modules"
TOKEN = "test-token-123"

#: the known-answer volume: a 20x20x20 box of 300 in a 64x64x40 volume of zeros
SPACING = (0.8, 0.8, 2.0)
BOX_VOXELS = 20 * 20 * 20
BOX_ML = BOX_VOXELS * 0.8 * 0.8 * 2.0 / 1000.0


def box_volume() -> Volume:
    array = np.zeros((40, 64, 64), np.int16)
    array[10:30, 20:40, 20:40] = 300
    return Volume(array, SPACING, (-25.0, -25.0, -40.0))


@pytest.fixture(scope="session")
def ct_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("volumes") / "box-ct.nrrd"
    write_volume(path, box_volume())
    return path


@dataclass
class ApiServer:
    process: subprocess.Popen
    base: str
    token: str
    data: Path
    lines: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def log(self) -> str:
        return "".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_api(data: Path, *extra: str, env: dict[str, str] | None = None, timeout_s: float = 90) -> ApiServer:
    """``slicer-cloud api`` on 127.0.0.1 and a free port; returns once it answers."""
    command = [sys.executable, "-m", "slicer_cloud.cli", "api", "--data", str(data), "--port", "0",
               "--token", TOKEN, *extra]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, **(env or {})})
    server = ApiServer(process, "", TOKEN, data)
    deadline = time.monotonic() + timeout_s
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        server.lines.append(line)
        match = re.match(r"Serving on (http://[^/]+)/docs", line)
        if match:
            server.base = match.group(1)
            break
    if not server.base:
        process.kill()
        process.wait()
        raise AssertionError("slicer-cloud api did not start:\n" + server.log())

    def drain() -> None:
        for line in process.stdout:  # keep the pipe from filling up
            server.lines.append(line)

    threading.Thread(target=drain, daemon=True).start()
    import httpx

    while time.monotonic() < deadline:  # the socket is bound already; wait for the app
        try:
            if httpx.get(server.base + "/api/health", timeout=5).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise AssertionError("slicer-cloud api never became healthy:\n" + server.log())


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[ApiServer]:
    """One server for a test module: 2 local workers, the test modules, an 8 MiB upload limit."""
    data = tmp_path_factory.mktemp("data")
    server = start_api(data, "--workers", "2", "--modules-path", str(MODULES_DIR),
                       env={"SLICER_CLOUD_MAX_UPLOAD_BYTES": str(8 * 1024 * 1024)})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(api):
    from slicer_cloud.client import Client

    with Client(api.base, api.token) as connected:
        yield connected


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(predicate, timeout_s: float = 30.0, interval_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s} s")
