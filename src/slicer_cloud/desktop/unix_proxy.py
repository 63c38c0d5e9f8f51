"""A reverse proxy from our token-checked aiohttp app to an HTTP server on a private unix socket.

Used by the selkies transport: selkies serves its web client and its websocket on a unix socket
inside the desktop's 0700 runtime folder, so no other local user can reach it and no TCP port is
opened; the browser reaches it only through these handlers, which sit behind the same token
middleware as the rest of the desktop. Bytes are counted into the bridge's counters so the status
page and the benchmark see the same figures for both transports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import aiohttp
from aiohttp import WSMsgType, web

from slicer_cloud.desktop.bridge import MAX_CLIENT_MESSAGE, BridgeCounters

log = logging.getLogger(__name__)

# Hop-by-hop headers, and the ones that would hand the browser something of ours or theirs.
_DROP_REQUEST = {"host", "connection", "upgrade", "keep-alive", "te", "trailer", "transfer-encoding", "cookie",
                 "authorization", "proxy-authorization", "sec-websocket-key", "sec-websocket-version",
                 "sec-websocket-extensions", "sec-websocket-protocol", "content-length"}  # fmt: skip
_DROP_RESPONSE = {"connection", "keep-alive", "transfer-encoding", "content-length", "set-cookie", "content-encoding"}


class UnixProxy:
    """Forward ``prefix + path`` to ``upstream_prefix + path`` on the HTTP server at ``socket``."""

    def __init__(self, socket: Path, upstream_prefix: str, counters: BridgeCounters) -> None:
        self.socket = socket
        self.upstream_prefix = upstream_prefix.rstrip("/")
        self.counters = counters
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(self.socket)), auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_read=60),
            )  # fmt: skip
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _upstream_url(self, request: web.Request) -> str:
        tail = request.match_info.get("path", "")
        query = ("?" + request.query_string) if request.query_string else ""
        return f"http://desktop{self.upstream_prefix}/{tail}{query}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP_REQUEST}
        try:
            async with self._client().request(
                request.method, self._upstream_url(request), headers=headers, data=await request.read(), allow_redirects=False
            ) as upstream:
                body = await upstream.read()
                out = {k: v for k, v in upstream.headers.items() if k.lower() not in _DROP_RESPONSE}
                if "Location" in out and out["Location"].startswith(self.upstream_prefix + "/"):
                    out["Location"] = request.path[: len(request.path) - len(request.match_info.get("path", ""))].rstrip("/") + out["Location"][len(self.upstream_prefix):]
                self.counters.bytes_to_browser += len(body)
                return web.Response(status=upstream.status, body=body, headers=out)
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as error:
            log.info("Desktop stream server not reachable: %r", error)
            return web.Response(status=503, text="503: the desktop's stream server is not reachable (it may still be starting).\n")

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        try:
            upstream = await self._client().ws_connect(
                self._upstream_url(request), protocols=protocols, max_msg_size=0, autoping=True, heartbeat=30.0
            )
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            log.info("Desktop stream websocket not reachable: %r", error)
            return web.Response(status=503, text="503: the desktop's stream server is not reachable.\n")
        ws = web.WebSocketResponse(
            protocols=(upstream.protocol,) if upstream.protocol else (), max_msg_size=MAX_CLIENT_MESSAGE, heartbeat=30.0
        )
        await ws.prepare(request)
        self.counters.clients += 1
        self.counters.connections += 1
        self.counters.open.add(ws)

        async def to_browser() -> None:
            async for message in upstream:
                if message.type == WSMsgType.BINARY:
                    self.counters.bytes_to_browser += len(message.data)
                    await ws.send_bytes(message.data)
                elif message.type == WSMsgType.TEXT:
                    self.counters.bytes_to_browser += len(message.data)
                    await ws.send_str(message.data)
                else:
                    return

        async def to_server() -> None:
            async for message in ws:
                if message.type == WSMsgType.BINARY:
                    self.counters.bytes_from_browser += len(message.data)
                    await upstream.send_bytes(message.data)
                elif message.type == WSMsgType.TEXT:
                    self.counters.bytes_from_browser += len(message.data)
                    await upstream.send_str(message.data)
                else:
                    return

        tasks = [asyncio.create_task(to_browser()), asyncio.create_task(to_server())]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = task.exception()
                if error and not isinstance(error, (ConnectionError, asyncio.CancelledError)):
                    log.warning("Desktop stream connection ended by an error: %r", error)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.counters.clients -= 1
            self.counters.open.discard(ws)
            with contextlib.suppress(Exception):
                await upstream.close()
            if not ws.closed:
                await ws.close()
        return ws
