"""The viewer's front door: one aiohttp server that checks the token, hands each new tab its own
session process, proxies the page and its websocket to it, and takes uploads and downloads.

It never renders and never parses image files, so it keeps answering whatever a session does.

Routes (under the base URL):

* ``GET /``                 a new session for this tab (``?open=relative/path`` opens that file)
* ``GET /s/<id>/...``       the session's page, assets and websocket (``/s/<id>/ws``)
* ``POST /api/upload``      raw request body streamed to disk (``?name=file.nrrd``)
* ``GET /api/download``     a file from the data folder (``?path=relative/path``)
* ``GET /api/health``       no token needed
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
from pathlib import PurePosixPath
from urllib.parse import quote

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from slicer_cloud.config import Limits, ViewerSettings
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store import DataRoot, stream_to_file
from slicer_cloud.viewer.sessions import OpenItem, OpenRequest, SessionManager
from slicer_cloud.viewer.staging import new_staging_folder, sweep_stale
from slicer_cloud.web.auth import apply_security_headers, public, token_middleware
from slicer_cloud.web.disposition import content_disposition

log = logging.getLogger("slicer_cloud.viewer")

MANAGER = web.AppKey("manager", SessionManager)
SETTINGS = web.AppKey("settings", ViewerSettings)
LIMITS = web.AppKey("limits", Limits)
DATA_ROOT = web.AppKey("data_root", DataRoot)
CLIENT = web.AppKey("client", aiohttp.ClientSession)
SWEEPER = web.AppKey("sweeper", asyncio.Task)

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "cookie",
    "authorization",
    "content-length",
}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


def _error_response(error: SlicerCloudError, *, as_json: bool, as_html: bool = False) -> web.Response:
    headers = {}
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(error.retry_after_s)
    if as_json:
        return web.json_response({"error": error.message}, status=error.status, headers=headers)
    if as_html:
        return web.Response(status=error.status, text=_error_page(error), content_type="text/html", headers=headers)
    return web.Response(status=error.status, text=error.message + "\n", content_type="text/plain", headers=headers)


def _error_page(error: SlicerCloudError) -> str:
    """A page for a browser tab; a temporary refusal (viewer busy) reloads itself when told to."""
    message = html.escape(error.message)
    if error.retry_after_s is None:
        return f"<!doctype html><title>Viewer</title><p>{message}</p>"
    wait = error.retry_after_s
    return (
        f'<!doctype html><meta http-equiv="refresh" content="{wait}"><title>Viewer busy</title>'
        f"<p>{message}</p><p>This page tries again by itself in {wait} seconds.</p>"
    )


@web.middleware
async def errors_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except SlicerCloudError as error:
        if error.detail:
            log.info("%s %s: %s (%s)", request.method, request.path, error.message, error.detail)
        return _error_response(
            error, as_json="/api/" in request.path, as_html="text/html" in request.headers.get("Accept", "")
        )


def build_app(
    settings: ViewerSettings,
    limits: Limits,
    *,
    token: str,
    port: int,
    default_open: OpenRequest | None,
) -> web.Application:
    base = settings.base_url
    app = web.Application(
        middlewares=[errors_middleware, token_middleware(token, port, session_ttl_s=settings.session_cookie_ttl_s)],
        client_max_size=1024**2,  # uploads are streamed, never read whole
    )
    app[SETTINGS] = settings
    app[LIMITS] = limits
    app[DATA_ROOT] = DataRoot(settings.data_dir)
    app[MANAGER] = SessionManager(settings, limits, gateway_base=base, default_open=default_open)

    app.router.add_get(base, new_session)
    app.router.add_get(base + "api/health", health)
    app.router.add_post(base + "api/upload", upload)
    app.router.add_get(base + "api/download", download)
    app.router.add_route("*", base + "s/{sid}/{tail:.*}", proxy)
    app.router.add_get(base + "s/{sid}", lambda r: _redirect(f"{base}s/{r.match_info['sid']}/"))

    app.on_startup.append(_on_startup)
    app.on_cleanup.append(_on_cleanup)
    return app


async def _on_startup(app: web.Application) -> None:
    app[CLIENT] = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
    app[SWEEPER] = asyncio.ensure_future(_sweep_staging(app))
    await app[MANAGER].start()


async def _sweep_staging(app: web.Application) -> None:
    """Uploads staged by tabs that closed before opening them: at start, then periodically."""
    max_age = app[SETTINGS].upload_staging_max_age_s
    interval = min(300.0, max(0.5, max_age / 4))
    while True:
        try:
            await asyncio.to_thread(sweep_stale, app[DATA_ROOT], max_age)
        except OSError as error:
            log.warning("could not sweep upload staging: %s", error)
        await asyncio.sleep(interval)


async def _on_cleanup(app: web.Application) -> None:
    app[SWEEPER].cancel()
    await app[MANAGER].close()
    await app[CLIENT].close()


def _redirect(location: str) -> web.Response:
    raise web.HTTPFound(location=location)


# -- pages -----------------------------------------------------------------------------------
async def new_session(request: web.Request) -> web.Response:
    manager = request.app[MANAGER]
    wanted = request.query.get("open")
    open_request = OpenRequest((OpenItem(path=wanted, trusted=False, label=wanted),)) if wanted else None
    session = await manager.acquire(open_request)
    raise web.HTTPFound(location=_session_page(request, session))


def _session_page(request: web.Request, session) -> str:
    """The session's page URL. ``secret`` is the session's websocket key (the page drops it from
    the address bar at once); ``sessionURL`` points the client straight at its websocket."""
    base = request.app[SETTINGS].base_url
    ws = quote(f"ws://USE_HOST{base}s/{session.id}/ws", safe="")
    return f"{base}s/{session.id}/?secret={session.secret}&sessionURL={ws}"


@public
async def health(request: web.Request) -> web.Response:
    manager = request.app[MANAGER]
    return web.json_response(
        {"status": "ok", "sessions": manager.assigned_count(), "max_sessions": request.app[SETTINGS].max_sessions}
    )


# -- uploads and downloads -------------------------------------------------------------------
def _upload_name(raw: str | None) -> str:
    name = PurePosixPath((raw or "").replace("\\", "/")).name
    name = _SAFE_NAME.sub("_", name).strip(" .")
    if not name:
        raise SlicerCloudError("The upload needs a file name (?name=scan.nrrd).", status=400)
    return name[:200]


async def upload(request: web.Request) -> web.Response:
    """Stream the request body into a hidden staging folder; the session checks and moves it."""
    limits = request.app[LIMITS]
    data_root = request.app[DATA_ROOT]
    name = _upload_name(request.query.get("name"))
    if request.content_length is not None and request.content_length > limits.max_upload_bytes:
        raise SlicerCloudError(
            f"The upload is larger than the limit of {limits.max_upload_bytes / 1024**2:.0f} MiB.", status=413
        )
    staging = new_staging_folder(data_root)
    target = staging / name

    async def chunks():
        async for chunk in request.content.iter_chunked(1024 * 1024):
            yield chunk

    try:
        size = await stream_to_file(chunks(), target, max_bytes=limits.max_upload_bytes)
    except BaseException:
        with contextlib.suppress(OSError):
            staging.rmdir()
        raise
    if size == 0:
        target.unlink(missing_ok=True)
        staging.rmdir()
        raise SlicerCloudError("The upload is empty.", status=400)
    return web.json_response({"staged": data_root.relative(target), "size": size}, status=201)


async def download(request: web.Request) -> web.StreamResponse:
    data_root = request.app[DATA_ROOT]
    path = data_root.resolve(request.query.get("path", ""))
    if not path.is_file():
        raise SlicerCloudError("Only files can be downloaded.", status=400)
    return web.FileResponse(path, headers={"Content-Disposition": content_disposition(path.name)})


# -- the session proxy -----------------------------------------------------------------------
async def proxy(request: web.Request) -> web.StreamResponse:
    manager = request.app[MANAGER]
    base = request.app[SETTINGS].base_url
    session = manager.get(request.match_info["sid"])
    if session is None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            raise web.HTTPNotFound(text="This viewer session has ended.\n")
        return web.Response(
            status=404,
            content_type="text/html",
            text=f'<!doctype html><title>Session ended</title><p>This viewer session has ended. '
            f'<a href="{base}">Open a new one</a>.</p>',
        )
    tail = request.match_info["tail"]
    if tail == "" and request.method == "GET" and request.query.get("secret") != session.secret:
        # A reload: the page removed the secret from its URL; give it back.
        raise web.HTTPFound(location=_session_page(request, session))
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await _proxy_websocket(request, session, tail)
    return await _proxy_http(request, session, tail)


async def _proxy_http(request: web.Request, session, tail: str) -> web.StreamResponse:
    client = request.app[CLIENT]
    url = f"http://127.0.0.1:{session.port}/{tail}"
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    params = [(k, v) for k, v in request.query.items() if k != "token"]
    data = request.content if request.body_exists else None
    try:
        async with client.request(request.method, url, params=params, headers=headers, data=data, allow_redirects=False) as upstream:
            response = web.StreamResponse(status=upstream.status)
            for key, value in upstream.headers.items():
                if key.lower() not in _HOP_BY_HOP and key.lower() != "set-cookie":
                    response.headers[key] = value
            apply_security_headers(response)
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(256 * 1024):
                await response.write(chunk)
            await response.write_eof()
            return response
    except aiohttp.ClientError as error:
        raise SlicerCloudError("The viewer session is not answering.", status=502, detail=str(error)) from None


async def _proxy_websocket(request: web.Request, session, tail: str) -> web.WebSocketResponse:
    client = request.app[CLIENT]
    manager = request.app[MANAGER]
    try:
        upstream = await client.ws_connect(
            f"ws://127.0.0.1:{session.port}/{tail}", max_msg_size=0, compress=0, autoping=True, heartbeat=None
        )
    except aiohttp.ClientError as error:
        raise SlicerCloudError("The viewer session is not answering.", status=502, detail=str(error)) from None
    # A browser's messages are bounded (its session's are ours, and carry the images).
    downstream = _BoundedWebSocket(request.app[SETTINGS].max_ws_message_bytes)
    await downstream.prepare(request)
    manager.connected(session)
    try:
        await asyncio.gather(_pump(downstream, upstream), _pump(upstream, downstream))
    finally:
        manager.disconnected(session)
        await upstream.close()
        await downstream.close()
    return downstream


class _BoundedWebSocket(web.WebSocketResponse):
    """Refuses a message over ``limit`` while it arrives (never buffered whole) and closes with
    1009 and a reason the page can show; aiohttp alone would close with no reason."""

    def __init__(self, limit: int):
        super().__init__(max_msg_size=limit, compress=False, heartbeat=30)
        self._too_big = f"message larger than the limit of {limit / 1024**2:g} MiB".encode()

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not message:
            message = self._too_big
        return await super().close(code=code, message=message, drain=drain)


async def _pump(source, sink) -> None:
    try:
        async for message in source:
            if message.type == WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            elif message.type == WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break
    except (ConnectionResetError, aiohttp.ClientError, RuntimeError):
        pass
    finally:
        with contextlib.suppress(Exception):
            await sink.close()
