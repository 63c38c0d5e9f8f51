"""A real ``slicer-cloud serve`` (Jupyter Server + the extension + jupyter-server-proxy) on a
free loopback port, one per test module, stopped by its PID afterwards."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import requests

from slicer_cloud.core.phantom import make_phantom, write_nrrd
from tests.conftest import RunningService, start_service
from slicer_cloud.web.serving import free_port

TOKEN = "jupyter-test-token-1"


def jupyter_env(home: Path) -> dict[str, str]:
    """Private Jupyter folders, so the user's own Jupyter configuration plays no part."""
    return {
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "SLICER_CLOUD_SPARE_SESSIONS": "0",
        "SLICER_CLOUD_LOG_LEVEL": "INFO",
    }


def write_volume(folder: Path, name: str = "ct.nrrd") -> Path:
    phantom = make_phantom(shape=(96, 96, 48), spacing=(2.5, 2.5, 5.0))
    folder.mkdir(parents=True, exist_ok=True)
    write_nrrd(folder / name, phantom.array, phantom.spacing, phantom.origin)
    return folder / name


@dataclass
class Served:
    service: RunningService
    port: int
    data: Path

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def session(self) -> requests.Session:
        """A client logged in the way API clients log in to Jupyter: the token header."""
        session = requests.Session()
        session.headers["Authorization"] = f"token {TOKEN}"
        return session

    def service_ports(self) -> dict[str, int]:
        """The loopback ports the proxied services listen on, from their start-up lines."""
        found = re.findall(r"Serving on http://127\.0\.0\.1:(\d+)/slicer-(viewer|desktop|api)/", self.service.log())
        return {name: int(port) for port, name in found}


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("jupyter-home")
    data = home / "data"
    write_volume(data)
    port = free_port()
    service = start_service(
        ["serve", "--data", str(data), "--port", str(port), "--token", TOKEN, "--no-open"],
        cwd=home,
        log_path=home / "serve.log",
        env=jupyter_env(home),
    )
    try:
        yield Served(service, port, data)
    finally:
        service.stop()


def ws_handshake(url: str, headers: dict[str, str] | None = None, protocols: tuple[str, ...] = ()) -> tuple[int, bytes]:
    """Try a websocket upgrade; the HTTP status (101 when it opened) and the first message."""

    async def attempt() -> tuple[int, bytes]:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(url, headers=headers or {}, protocols=protocols, timeout=aiohttp.ClientWSTimeout(ws_close=10)) as ws:
                    try:
                        message = await asyncio.wait_for(ws.receive(), timeout=30)
                    except asyncio.TimeoutError:
                        return 101, b""
                    data = message.data if isinstance(message.data, (bytes, str)) else b""
                    return 101, data.encode() if isinstance(data, str) else data
            except aiohttp.WSServerHandshakeError as error:
                return error.status, b""

    # In its own thread: Playwright's sync API keeps an event loop running in the main thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, attempt()).result()


__all__ = ["TOKEN", "Served", "free_port", "jupyter_env", "write_volume", "ws_handshake"]
