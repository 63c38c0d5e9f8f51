"""The websocket bridge: browser (noVNC) <-> the VNC server's socket, bytes both ways.

It replaces websockify: one aiohttp handler behind the same token middleware as the page, so
the websocket cannot be reached without the token (the hole SlicerCompose left open), and no
extra process or port is needed. Binary frames only; RFB needs nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, WSMsgType, web

from slicer_cloud.desktop.vnc_auth import answer_browser

log = logging.getLogger(__name__)

#: the largest frame a browser may send; RFB client messages are small (clipboard aside)
MAX_CLIENT_MESSAGE = 4 * 1024 * 1024
_READ_CHUNK = 256 * 1024

OpenVnc = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


@dataclass
class BridgeCounters:
    """Traffic through the bridge, for the status page and the benchmark."""

    clients: int = 0
    connections: int = 0
    bytes_to_browser: int = 0
    bytes_from_browser: int = 0
    #: open websockets, closed with "going away" when the service stops
    open: set[web.WebSocketResponse] = field(default_factory=set, repr=False)

    async def close_all(self) -> None:
        for ws in list(self.open):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"the desktop is stopping")


_HANDSHAKE_TIMEOUT_S = 30.0


async def _answer_browser(ws: web.WebSocketResponse) -> bytes:
    """The browser's side of the security handshake, read from binary frames; returns bytes the
    browser sent beyond it."""
    buffer = bytearray()

    async def read_exactly(count: int) -> bytes:
        while len(buffer) < count:
            message = await ws.receive()
            if message.type != WSMsgType.BINARY:
                raise ConnectionError("the browser closed the connection during the VNC handshake")
            buffer.extend(message.data)
        data = bytes(buffer[:count])
        del buffer[:count]
        return data

    await answer_browser(read_exactly, ws.send_bytes)
    return bytes(buffer)


async def bridge(
    request: web.Request, open_vnc: OpenVnc, counters: BridgeCounters, *, answer_security: bool = False
) -> web.StreamResponse:
    """Upgrade to a websocket and pump bytes until either side closes. ``answer_security``: the
    VNC connection is already authenticated (a password the browser never sees); the bridge plays
    the server's side of the security handshake for the browser first."""
    try:
        reader, writer = await open_vnc()
    except OSError as error:
        # Before the upgrade: the browser gets a plain HTTP reason.
        return web.Response(status=503, text=f"503: the desktop's VNC server is not reachable ({error.strerror}).\n")
    ws = web.WebSocketResponse(protocols=("binary",), max_msg_size=MAX_CLIENT_MESSAGE, heartbeat=30.0)
    await ws.prepare(request)
    if answer_security:
        try:
            leftover = await asyncio.wait_for(_answer_browser(ws), _HANDSHAKE_TIMEOUT_S)
        except (ConnectionError, asyncio.TimeoutError) as error:
            log.info("Desktop connection refused during the VNC handshake: %s", error)
            writer.close()
            await ws.close(code=WSCloseCode.PROTOCOL_ERROR, message=b"VNC handshake failed")
            return ws
        if leftover:  # ClientInit sent in the same frame as the security choice
            writer.write(leftover)
    counters.clients += 1
    counters.connections += 1
    counters.open.add(ws)

    async def vnc_to_browser() -> None:
        while data := await reader.read(_READ_CHUNK):
            counters.bytes_to_browser += len(data)
            await ws.send_bytes(data)

    async def browser_to_vnc() -> None:
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                counters.bytes_from_browser += len(message.data)
                writer.write(message.data)
                await writer.drain()
            elif message.type == WSMsgType.TEXT:
                await ws.close(code=1003, message=b"binary frames only")
                return
            elif message.type == WSMsgType.ERROR:
                return

    tasks = [asyncio.create_task(vnc_to_browser()), asyncio.create_task(browser_to_vnc())]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if task.exception() and not isinstance(task.exception(), (ConnectionError, asyncio.CancelledError)):
                log.warning("Desktop connection ended by an error: %r", task.exception())
    finally:
        for task in tasks:
            task.cancel()
        counters.clients -= 1
        counters.open.discard(ws)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        if not ws.closed:
            await ws.close()
    return ws
