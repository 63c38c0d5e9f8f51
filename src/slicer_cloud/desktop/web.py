"""The desktop's web side: the page, the noVNC library, a status document and the websocket
bridge, every route but the health check behind the token middleware."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from aiohttp import web

from slicer_cloud.desktop.bridge import BridgeCounters, OpenVnc, bridge
from slicer_cloud.desktop.novnc import NoVncLibrary
from slicer_cloud.desktop.unix_proxy import UnixProxy
from slicer_cloud.security import DEFAULT_SESSION_TTL_S
from slicer_cloud.web.auth import public, token_middleware
from slicer_cloud.web.serving import normalize_base_url

#: the page's own files, packaged next to this module
PAGE_FILES = {
    "": ("index.html", "text/html"),
    "desktop.js": ("desktop.js", "text/javascript"),
    "desktop.css": ("desktop.css", "text/css"),
}

# The page loads only its own files and talks only to its own host (the websocket included).
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
        "style-src 'self'; script-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class DesktopInfo:
    """What the page shows about the desktop (see the ``status`` route)."""

    mode: str
    slicer_installed: bool
    message: str
    display: str
    novnc_version: str
    transport: str = "novnc"
    programs: Callable[[], list[dict[str, Any]]] = field(default=lambda: [])


def _page_file(name: str) -> bytes:
    return resources.files("slicer_cloud.desktop").joinpath("page", name).read_bytes()


def make_app(
    *,
    token: str,
    port: int,
    base_url: str,
    info: DesktopInfo,
    novnc: NoVncLibrary,
    open_vnc: OpenVnc,
    counters: BridgeCounters | None = None,
    session_ttl_s: float = DEFAULT_SESSION_TTL_S,
    bridge_answers_security: bool = False,
    stream_proxy: UnixProxy | None = None,
) -> web.Application:
    base = normalize_base_url(base_url)
    counters = counters or BridgeCounters()
    middleware = token_middleware(token, port, session_ttl_s=session_ttl_s)
    app = web.Application(middlewares=[middleware], client_max_size=64 * 1024)
    app["counters"] = counters

    async def close_websockets(_app: web.Application) -> None:
        await counters.close_all()

    app.on_shutdown.append(close_websockets)

    pages = {name: (_page_file(file), ctype) for name, (file, ctype) in PAGE_FILES.items()}

    async def page(request: web.Request) -> web.Response:
        if stream_proxy is not None and not request.match_info.get("name") and request.path == base:
            # selkies transport: its own client is the page (the VNC page stays reachable for the fallback)
            raise web.HTTPFound(location=base + "selkies/")
        body, ctype = pages[request.match_info.get("name", "")]
        return web.Response(body=body, content_type=ctype, headers=_PAGE_HEADERS)

    async def library(request: web.Request) -> web.StreamResponse:
        # Only the files indexed (and digested) at start; no directory walking from the URL.
        path = novnc.files.get(request.match_info["path"])
        if path is None:
            raise web.HTTPNotFound(text="404: no such file in the noVNC library.\n")
        return web.FileResponse(
            path,
            headers={"Content-Type": "text/javascript", "X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"},
        )

    async def status(_request: web.Request) -> web.Response:
        document = {
            "mode": info.mode,
            "slicer_installed": info.slicer_installed,
            "message": info.message,
            "display": info.display,
            "novnc_version": info.novnc_version,
            "transport": info.transport,
            "programs": info.programs(),
            "clients": counters.clients,
            "connections": counters.connections,
            "bytes_to_browser": counters.bytes_to_browser,
            "bytes_from_browser": counters.bytes_from_browser,
        }
        return web.json_response(document, dumps=lambda obj: json.dumps(obj, indent=1), headers={"Cache-Control": "no-store"})

    async def websockify(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise web.HTTPBadRequest(text="400: this URL is the desktop's websocket; open the page instead.\n")
        return await bridge(request, open_vnc, counters, answer_security=bridge_answers_security)

    @public
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def add_selkies_slash(_request: web.Request) -> web.Response:
        raise web.HTTPFound(location=base + "selkies/")

    async def add_slash(_request: web.Request) -> web.Response:
        raise web.HTTPFound(location=base)

    if base != "/":
        app.router.add_get(base.rstrip("/"), add_slash)
    app.router.add_get(base, page)
    app.router.add_get(base + "vnc", page)  # the noVNC page under every transport: the fallback
    app.router.add_get(base + "{name:desktop\\.(?:js|css)}", page)
    app.router.add_get(base + "novnc/{path:.+}", library)
    app.router.add_get(base + "status", status)
    app.router.add_get(base + "websockify", websockify)
    app.router.add_get(base + "healthz", healthz)
    if stream_proxy is not None:
        app.router.add_route("*", base + "selkies/{path:.*}", stream_proxy.handle)
        app.router.add_get(base + "selkies", add_selkies_slash)
    return app
