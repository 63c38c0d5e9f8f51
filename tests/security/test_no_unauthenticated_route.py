"""No route answers without credentials: every route and websocket of every service, read from
the apps' own route tables (so a route added later without a check fails here), is asked
without a token over real HTTP and must refuse.

Services: the viewer gateway and a viewer session, the compute API, the desktop, the Jupyter
portal and the jupyter-server-proxy entries (behind a real ``slicer-cloud serve``). The only
exceptions are listed in PUBLIC below, each with the reason.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from importlib.metadata import entry_points
from pathlib import Path

import aiohttp
import httpx
import pytest
from aiohttp import web

from tests.compute.conftest import start_api
from tests.conftest import run_async, start_service
from tests.jupyter.conftest import served  # noqa: F401  (a real slicer-cloud serve for this module)

TOKEN = "route-walk-token"

#: (service, path) reachable without a token, and why.
PUBLIC = {
    # liveness for load balancers and start-up checks; says "ok" and nothing an attacker can use
    ("viewer gateway", "/api/health"): "liveness check",
    ("compute API", "/api/health"): "liveness check",
    ("desktop", "/healthz"): "liveness check",
}

#: sample values for path parameters (anything well-formed: the check comes before the handler)
SAMPLES = {"sid": "0123456789abcdef", "tail": "ws", "name": "desktop.js", "path": "core/rfb.js",
           "item_id": "0123456789abcdef0123", "job_id": "0123456789abcdef0123"}


def _fill(template: str) -> str:
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: SAMPLES.get(m.group(1), "x"), template)


def _refused(status: int) -> bool:
    return status in (401, 403)


async def _ask(url: str, method: str) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, allow_redirects=False, data=b"" if method != "GET" else None) as reply:
            return reply.status


async def _websocket(url: str) -> int:
    """The handshake status of a websocket upgrade (101: it opened)."""
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=10)) as ws:
                message = await asyncio.wait_for(ws.receive(), timeout=30)
                # ASGI apps accept the upgrade and then close with a policy code (4403 here)
                return 403 if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and ws.close_code in (1008, 4401, 4403) else 101
        except aiohttp.WSServerHandshakeError as error:
            return error.status


def _walk(service: str, base: str, routes: list[tuple[str, str]]) -> list[str]:
    """Ask every (method, path) plainly and as a websocket; the list of what answered."""
    assert routes, f"no routes found for {service}"
    answered = []
    for method, path in routes:
        url = base.rstrip("/") + path
        methods = ["GET", "POST", "PUT", "DELETE"] if method in ("*", "ANY") else [method]
        for verb in methods:
            if verb == "HEAD":
                continue
            status = run_async(_ask(url, verb))
            public = (service, path) in PUBLIC
            if public:
                assert status < 400, f"{service} {verb} {path}: the public route answers {status}"
            elif not _refused(status):
                answered.append(f"{verb} {path} -> {status}")
        if method in ("GET", "*", "ANY") and (service, path) not in PUBLIC:
            status = run_async(_websocket(url.replace("http://", "ws://", 1)))
            if not _refused(status) and status == 101:
                answered.append(f"websocket {path} -> opened")
    return answered


def _aiohttp_routes(app: web.Application) -> list[tuple[str, str]]:
    routes = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("path") or info.get("formatter") or (info.get("prefix", "") + "/x")
        routes.append((route.method, _fill(template)))
    return routes


# --------------------------------------------------------------------------------------------
# the viewer gateway and one of its sessions


@pytest.fixture(scope="module")
def viewer(tmp_path_factory):
    data = tmp_path_factory.mktemp("walk-data")
    service = start_service(
        ["view", "--data", str(data), "--port", "0", "--token", TOKEN, "--no-open"],
        cwd=data,
        log_path=tmp_path_factory.mktemp("walk-log") / "viewer.log",
        env={"SLICER_CLOUD_SPARE_SESSIONS": "1"},
    )
    yield service
    service.stop()


def test_viewer_gateway_routes(viewer, tmp_path):
    from slicer_cloud.config import Limits, ViewerSettings
    from slicer_cloud.viewer.gateway import build_app

    app = build_app(ViewerSettings(data_dir=tmp_path, spare_sessions=0), Limits(), token=TOKEN, port=1, default_open=None)
    routes = _aiohttp_routes(app)
    assert any(path == "/api/upload" for _, path in routes)  # the table is the real one
    assert _walk("viewer gateway", viewer.base, routes) == []


def _session_port(gateway_pid: int) -> int:
    """The loopback port of a session process the gateway started (from its command line)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == gateway_pid and b"slicer_cloud.viewer.session" in cmdline:
            return int(cmdline[cmdline.index(b"--port") + 1])
    raise AssertionError("no session process found")


def test_viewer_session_websocket_needs_its_secret(viewer):
    """A session's websocket (the only way to its scene and files) refuses a client without the
    session's secret. Its plain HTTP routes serve the client code shipped in the package (the
    same for everyone, no data), on loopback only, so they are not asked here."""
    from tests.compute.conftest import wait_for

    port = wait_for(lambda: _try(_session_port, viewer.process.pid), timeout_s=120)
    url = f"ws://127.0.0.1:{port}/ws"
    wait_for(lambda: _try(socket.create_connection, ("127.0.0.1", port), 2), timeout_s=120)

    async def call(method: str, args: list) -> dict:
        """One wslink call (msgpack in chunks, the protocol the page speaks) on a new connection."""
        import msgpack
        from wslink.chunking import UnChunker, generate_chunks

        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url) as ws:
                message = msgpack.packb({"wslink": "1.0", "id": "system:c0:0" if method == "wslink.hello" else "rpc:c0:1",
                                         "method": method, "args": args, "kwargs": {}})
                for chunk in generate_chunks(message, 512 * 1024):
                    await ws.send_bytes(chunk)
                unchunker = UnChunker()
                while True:
                    reply = await asyncio.wait_for(ws.receive(), timeout=30)
                    if reply.type != aiohttp.WSMsgType.BINARY:
                        return {"closed": reply.type.name}
                    whole = unchunker.process_chunk(reply.data)
                    if whole is not None:
                        return whole if isinstance(whole, dict) else msgpack.unpackb(whole)

    for method, args in (("wslink.hello", [{"secret": "not-the-secret"}]), ("wslink.hello", [{}]),
                         ("trame.state.update", [[]])):
        answer = run_async(call(method, args))
        assert "result" not in answer, (method, answer)
        assert "error" in answer or "closed" in answer, (method, answer)


def _try(function, *args):
    try:
        return function(*args)
    except (AssertionError, OSError):
        return None


# --------------------------------------------------------------------------------------------
# the compute API


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    server = start_api(tmp_path_factory.mktemp("walk-api"), "--workers", "1")
    yield server
    server.stop()


def test_compute_api_routes(api, tmp_path):
    from slicer_cloud.compute.api import create_app
    from slicer_cloud.compute.settings import ComputeSettings

    app = create_app(ComputeSettings(data_dir=tmp_path), TOKEN)  # the table only: never started
    routes = _starlette_routes(app.routes)
    assert ("POST", "/api/jobs") in routes
    assert any(path.startswith("/api/dicomweb/") for _, path in routes)  # included routers are walked too
    assert _walk("compute API", api.base, routes) == []


def _starlette_routes(routes, prefix: str = "") -> list[tuple[str, str]]:
    """(method, path) of every route, mounts and included routers opened up."""
    from starlette.routing import Mount

    found = []
    for route in routes:
        if isinstance(route, Mount):
            found.append(("GET", prefix + _fill(route.path) + "/x"))
        elif hasattr(route, "path"):
            for method in sorted(getattr(route, "methods", None) or {"GET"}):
                found.append((method, prefix + _fill(route.path)))
        elif hasattr(route, "original_router"):  # FastAPI's include_router
            found += _starlette_routes(route.original_router.routes, prefix + route.include_context.prefix)
        else:
            raise AssertionError(f"a route of an unknown kind: {route!r}")
    return found


# --------------------------------------------------------------------------------------------
# the desktop (its real app, served over loopback; nothing behind it is reached)


def test_desktop_routes(tmp_path):
    from slicer_cloud.desktop.novnc import NoVncLibrary
    from slicer_cloud.desktop.web import DesktopInfo, make_app

    async def never(*_args):
        raise AssertionError("an unauthenticated request reached the VNC server")

    novnc = NoVncLibrary(root=tmp_path, version="test", digest="", files={"core/rfb.js": tmp_path / "rfb.js"})
    app = make_app(token=TOKEN, port=1, base_url="/", info=DesktopInfo("test", False, "", ":0", "test"),
                   novnc=novnc, open_vnc=never)
    routes = _aiohttp_routes(app)
    assert ("GET", "/websockify") in routes

    async def serve_and_walk() -> list[str]:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            # _walk runs its own loops (in threads of their own): keep this one serving meanwhile
            return await asyncio.to_thread(_walk, "desktop", f"http://127.0.0.1:{port}", routes)
        finally:
            await runner.cleanup()

    assert run_async(serve_and_walk()) == []  # in a thread: Playwright may hold this one's loop


# --------------------------------------------------------------------------------------------
# Jupyter: the portal's handlers and the jupyter-server-proxy entries, behind a real serve


def test_portal_and_proxies(served, tmp_path):  # noqa: F811
    from slicer_cloud.jupyter.portal import portal_handlers

    routes = []
    for handler in portal_handlers("/", tmp_path):
        pattern = handler[0]
        sample = re.sub(r"\((?:[^()]*)\)\?", "", pattern)  # optional groups: left out
        sample = re.sub(r"\(\?:([^|)]+)[^)]*\)", r"\1", sample)  # alternatives: the first
        sample = re.sub(r"\([^)]*\)", "x", sample).replace("\\.", ".")  # groups: a name
        assert re.fullmatch(pattern, sample), (pattern, sample)  # the sample reaches that handler
        methods = [m for m in ("GET", "POST", "PUT", "DELETE") if m.lower() in vars(handler[1])] or ["GET"]
        routes += [(method, sample) for method in methods]
    names = [entry.name for entry in entry_points(group="jupyter_serverproxy_servers") if entry.value.startswith("slicer_cloud.")]
    assert sorted(names) == ["slicer-api", "slicer-desktop", "slicer-viewer"]
    for name in names:
        routes += [("*", f"/{name}/"), ("*", f"/{name}/api/health"), ("*", f"/{name}/websockify"), ("*", f"/{name}/s/x/ws")]

    answered = []
    for method, path in routes:
        for verb in (["GET", "POST", "PUT", "DELETE"] if method == "*" else [method]):
            reply = httpx.request(verb, served.root.rstrip("/") + path, follow_redirects=False, timeout=60)
            # Jupyter answers a page request without login with a redirect to its login page
            to_login = reply.status_code in (302, 303) and "/login" in reply.headers.get("location", "")
            if not (_refused(reply.status_code) or to_login):
                answered.append(f"{verb} {path} -> {reply.status_code}")
        status = run_async(_websocket(served.root.replace("http://", "ws://").rstrip("/") + path))
        if status == 101:
            answered.append(f"websocket {path} -> opened")
    assert answered == []
    assert served.service_ports() == {}  # no proxied service was started for a refused request
