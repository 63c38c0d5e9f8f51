"""The two viewers under test, started as real processes on loopback (benchmark helpers).

* ``medical``: trame-slicer's own ``medical-viewer`` (one process, one shared scene), started with
  its documented command; with a volume preloaded, through ``viewer_medical_launcher``.
* ``ours``: ``slicer-cloud view`` (a gateway plus one session process per tab, one spare ahead).

Each :class:`Server` knows its page URL, what "page served" means for it, which plain HTTP
request to time while it renders, and the memory of its whole process tree.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from slicer_cloud.desktop import proctree
from slicer_cloud.web.serving import free_port

MEDICAL = "trame-slicer medical-viewer"
OURS = "slicer-cloud view"
TOKEN = "benchmark-token"
START_TIMEOUT_S = 180.0


@dataclass
class Server:
    kind: str
    process: subprocess.Popen
    started: float  # perf_counter() just before the process was created
    base: str = ""  # http://127.0.0.1:PORT/
    log_path: Path | None = None
    _log_lines: list[str] = field(default_factory=list)

    # -- addresses -------------------------------------------------------------------------
    @property
    def page_url(self) -> str:
        return self.base + "?token=" + TOKEN if self.kind == OURS else self.base + "index.html"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"} if self.kind == OURS else {}

    def front_door_url(self) -> str:
        """A request that needs no rendering: the gateway's health route, or the page file."""
        return self.base + "api/health" if self.kind == OURS else self.base + "index.html"

    # -- readiness -------------------------------------------------------------------------
    def wait_page_served(self, timeout: float = START_TIMEOUT_S) -> float:
        """Seconds from process start until the viewer's page is answered with 200.

        trame-slicer: ``GET /index.html``. slicer-cloud: ``GET /`` (one request, following the
        redirect to a session page), which waits for a session process to be ready; polling
        ``/`` would start a session per poll, so the health route is polled first.
        """
        deadline = time.monotonic() + timeout
        probe = self.front_door_url()
        with httpx.Client(timeout=httpx.Timeout(timeout), headers=self.headers, follow_redirects=True) as client:
            while time.monotonic() < deadline:
                self._check_alive()
                try:
                    if client.get(probe).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
            else:
                raise RuntimeError(f"{self.kind} never answered {probe}")
            if self.kind == OURS:
                response = client.get(self.base)
                if response.status_code != 200 or "<html" not in response.text.lower():
                    raise RuntimeError(f"{self.kind}: the page came back as {response.status_code}")
        return time.perf_counter() - self.started

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.kind} exited with code {self.process.returncode}:\n{self.log_tail()}")

    def assigned_sessions(self) -> int:
        """slicer-cloud: sessions handed to tabs and still alive (0 for trame-slicer)."""
        if self.kind != OURS:
            return 0
        return int(httpx.get(self.base + "api/health", timeout=30).json()["sessions"])

    def settle(self, timeout: float = 120.0, *, sessions: int | None = None) -> bool:
        """Wait until the process tree has been quiet (under 10 % of a core for 1.5 s) and, for
        slicer-cloud, until ``sessions`` tabs' sessions remain. False when it never settled."""
        deadline = time.monotonic() + timeout
        quiet_since = None
        last = self.cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            self._check_alive()
            now = self.cpu_seconds()
            busy = now - last > 0.05
            last = now
            if sessions is not None and self.assigned_sessions() != sessions:
                busy = True
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= 1.5:
                return True
        return False

    # -- resources -------------------------------------------------------------------------
    def tree(self) -> list[proctree.ProcInfo]:
        return proctree.tree_memory(self.process.pid)

    def cpu_seconds(self) -> float:
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for info in self.tree():
            try:
                fields = Path(f"/proc/{info.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / ticks

    def idle_checker(self) -> Callable[[], bool]:
        """A function telling whether the tree used under 10 % of a core since its last call."""
        state = {"cpu": self.cpu_seconds(), "at": time.monotonic()}

        def idle() -> bool:
            cpu, at = self.cpu_seconds(), time.monotonic()
            share = (cpu - state["cpu"]) / max(at - state["at"], 1e-3)
            state.update(cpu=cpu, at=at)
            return share < 0.1

        return idle

    def memory(self) -> tuple[int, int, int]:
        """(RSS, PSS, processes) of the whole tree; PSS shares common pages out fairly."""
        rss = pss = 0
        infos = self.tree()
        for info in infos:
            rss += info.rss_bytes
            pss += _pss_bytes(info.pid)
        return rss, pss, len(infos)

    # -- logs and stopping -----------------------------------------------------------------
    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _pss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def start(kind: str, workdir: Path, *, volume: Path | None) -> Server:
    """Start one viewer, serving an empty scene or with ``volume`` preloaded."""
    env = dict(os.environ, VTK_DEFAULT_OPENGL_WINDOW="vtkEGLRenderWindow", PYTHONUNBUFFERED="1")
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{'medical' if kind == MEDICAL else 'ours'}-{time.monotonic_ns()}.log"
    log = open(log_path, "w")
    if kind == MEDICAL:
        port = free_port()
        if volume is None:  # the documented command, unchanged
            command = [sys.executable, "-m", "trame_slicer.app.medical_viewer_app", "--server", "--port", str(port), "--host", "127.0.0.1"]
        else:
            command = [sys.executable, "-m", "benchmarks.viewer_medical_launcher", "--port", str(port), "--file", str(volume)]
        started = time.perf_counter()
        # cwd: the repository root, so that ``-m benchmarks...`` imports
        process = subprocess.Popen(command, cwd=_repo_root(), stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        return Server(kind, process, started, base=f"http://127.0.0.1:{port}/", log_path=log_path)

    env["SLICER_CLOUD_CACHE_DIR"] = str(workdir / "cache")
    command = [sys.executable, "-m", "slicer_cloud.cli", "view", "--data", str(data), "--port", "0", "--token", TOKEN, "--no-open"]
    if volume is not None:
        command.insert(4, str(volume))
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    server = Server(kind, process, started, log_path=log_path)
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        match = re.search(r"Serving on (http://[^/\s]+/)", line)
        if match:
            server.base = match.group(1)
            break
    if not server.base:
        server.stop()
        log.close()
        raise RuntimeError(f"slicer-cloud view did not start:\n{server.log_tail()}")

    def drain() -> None:  # the service must never block on a full stdout pipe
        for rest in process.stdout:
            log.write(rest)
        log.close()

    threading.Thread(target=drain, daemon=True).start()
    return server


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
