"""The session cap holds under a burst of simultaneous new tabs (no more processes than the cap;
the tabs over it are told to come back, at once, with Retry-After)."""

from __future__ import annotations

import asyncio
import threading
import time

import aiohttp
import psutil
import requests

from tests.conftest import run_async

CAP = 2
BURST = 50


def _session_processes(pid: int) -> int:
    count = 0
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "slicer_cloud.viewer.session" in " ".join(child.cmdline()):
                count += 1
        except psutil.Error:
            pass  # ended between listing and reading
    return count


class PeakWatcher:
    """Counts the gateway's session processes every few milliseconds and keeps the peak."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _session_processes(self.pid))
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)


async def _burst(url: str, count: int) -> list[tuple[int, dict, str]]:
    headers = {"Authorization": "Bearer t", "Accept": "text/html"}
    timeout = aiohttp.ClientTimeout(total=280)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as client:

        async def one() -> tuple[int, dict, str]:
            async with client.get(url, headers=headers, allow_redirects=False) as reply:
                return reply.status, dict(reply.headers), await reply.text()

        return await asyncio.gather(*(one() for _ in range(count)))


def test_a_burst_of_new_tabs_never_starts_more_sessions_than_the_cap(service_factory, tmp_path):
    service = service_factory(
        ["view", "--data", str(tmp_path), "--port", "0", "--token", "t", "--no-open"],
        env={
            "SLICER_CLOUD_SPARE_SESSIONS": "1",
            "SLICER_CLOUD_MAX_SESSIONS": str(CAP),
            "SLICER_CLOUD_BUSY_RETRY_AFTER_S": "7",
            # a busy machine may take long to start a session: only the cap answers 503 here
            "SLICER_CLOUD_SESSION_START_TIMEOUT_S": "240",
        },
    )
    # wait for the spare to be started (it counts toward the cap too)
    deadline = time.monotonic() + 120
    while _session_processes(service.process.pid) < 1 and time.monotonic() < deadline:
        time.sleep(0.1)

    with PeakWatcher(service.process.pid) as watcher:
        replies = run_async(_burst(service.base, BURST))
        # sessions that were started keep running; give a late launch time to show up
        time.sleep(1.0)
    statuses = [(status, text[:80]) for status, _, text in replies]
    served = [r for r in replies if r[0] == 302]
    busy = [r for r in replies if r[0] == 503]
    assert watcher.peak <= CAP, f"{watcher.peak} session processes at once with a cap of {CAP}"
    assert 1 <= len(served) <= CAP, statuses
    assert len(served) + len(busy) == BURST, statuses
    for _, headers, text in busy:
        assert headers["Retry-After"] == "7"
        assert headers["Content-Type"].startswith("text/html")
        assert "in use" in text and "tries again" in text
        assert 'http-equiv="refresh" content="7"' in text

    # still serving, still at the cap, and the next tab is told the same at once
    assert requests.get(service.base + "api/health", timeout=10).json()["sessions"] == len(served)
    late = requests.get(service.base, headers={"Authorization": "Bearer t"}, timeout=30, allow_redirects=False)
    assert late.status_code == 503 and late.headers["Retry-After"] == "7"
    assert _session_processes(service.process.pid) <= CAP
