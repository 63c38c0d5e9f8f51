"""Fixtures shared by the whole suite: a headless Chromium and helpers to run our services."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# VTK in the test process renders offscreen through EGL.
os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def run_async(coro):
    """Run a coroutine to completion from a test, even while Playwright's sync API holds this
    thread's event loop (asyncio.run would refuse): in a thread of its own."""
    import asyncio
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def browser():
    """One real headless Chromium for the whole run (Debian's, driven by Playwright)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run ./scripts/bootstrap.sh (it installs Debian's chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        _patient_navigation(chromium)
        yield chromium
        chromium.close()


# Playwright gives a navigation 30 s by default; a page that starts a service (a viewer session,
# a Voila kernel) can take longer on a busy 2-core machine. Explicit timeouts still apply.
NAVIGATION_TIMEOUT_MS = 180_000


def _patient_navigation(chromium) -> None:
    """Every context and page made from this browser waits up to NAVIGATION_TIMEOUT_MS to load."""
    new_context, new_page = chromium.new_context, chromium.new_page

    def patient_context(*args, **kwargs):
        context = new_context(*args, **kwargs)
        context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        return context

    def patient_page(*args, **kwargs):
        page = new_page(*args, **kwargs)
        page.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        return page

    chromium.new_context, chromium.new_page = patient_context, patient_page


@dataclass
class RunningService:
    """A slicer-cloud service started as a real process on loopback."""

    process: subprocess.Popen
    url: str  # as printed on "Serving on URL", token included
    log_path: Path

    @property
    def base(self) -> str:
        return self.url.split("?", 1)[0]

    @property
    def token(self) -> str:
        match = re.search(r"[?&]token=([^&]+)", self.url)
        return match.group(1) if match else ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_service(args: list[str], *, cwd: Path, log_path: Path, env: dict | None = None, timeout: float = 120) -> RunningService:
    """Run ``slicer-cloud ARGS`` and wait for its ``Serving on URL`` line."""
    full_env = {**os.environ, **(env or {})}
    log_file = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "slicer_cloud.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=log_file,
        text=True,
        env=full_env,
    )
    deadline = time.monotonic() + timeout
    url = None
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        log_file.write(line)
        log_file.flush()
        if line.startswith("Serving on "):
            url = line.split("Serving on ", 1)[1].strip()
            break
    if url is None:
        process.kill()
        process.wait()
        log_file.close()
        raise AssertionError(f"slicer-cloud {' '.join(args)} did not start:\n{log_path.read_text()}")

    # Keep draining stdout so the service never blocks on a full pipe.
    import threading

    def drain() -> None:
        for rest in process.stdout:
            log_file.write(rest)
            log_file.flush()

    threading.Thread(target=drain, daemon=True).start()
    return RunningService(process=process, url=url, log_path=log_path)


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator:
    """Start services for one test; all are stopped (by their PID) afterwards."""
    started: list[RunningService] = []

    def factory(args: list[str], *, cwd: Path | None = None, env: dict | None = None) -> RunningService:
        service = start_service(args, cwd=cwd or tmp_path, log_path=tmp_path / f"service-{len(started)}.log", env=env)
        started.append(service)
        return service

    yield factory
    for service in started:
        service.stop()
