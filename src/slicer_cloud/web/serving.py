"""Starting an aiohttp service the way every slicer-cloud service starts: bind, print one
``Serving on URL`` line, optionally open a browser, stop cleanly on Ctrl+C or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import webbrowser
from collections.abc import Awaitable, Callable

from aiohttp import web

from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.security import is_loopback


def normalize_base_url(base_url: str) -> str:
    """``viewer`` / ``/viewer`` / ``/viewer/`` -> ``/viewer/``."""
    base = "/" + base_url.strip().strip("/")
    return base if base == "/" else base + "/"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now, for a process started next to bind it (loopback by default)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as error:
        sock.close()
        raise SlicerCloudError(f"Cannot listen on {host}:{port}: {error.strerror}.", status=500) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def public_url(host: str, port: int, base: str, token: str, *, show_token: bool = True) -> str:
    """The URL to print. ``show_token=False`` leaves the token out (a service started by another
    program that holds the token, whose output may end up in a shared log)."""
    shown = host
    if host in ("0.0.0.0", "::", ""):
        shown = socket.gethostname()
    elif ":" in host and not host.startswith("["):
        shown = f"[{host}]"
    url = f"http://{shown}:{port}{base}"
    return url + (f"?token={token}" if token and show_token else "")


def serve_app(
    make_app: Callable[[int], web.Application],
    *,
    host: str,
    port: int,
    base: str,
    token: str,
    open_browser: bool,
    on_bound: Callable[[int], Awaitable[None]] | None = None,
    show_token: bool = True,
) -> None:
    """Run the app ``make_app(actual_port)`` until interrupted. Prints ``Serving on URL`` once
    it accepts connections (the port is known before the app is built: port 0 picks a free one,
    and the token cookie is named after the real port)."""
    sock = bind_socket(host, port)
    actual_port = sock.getsockname()[1]
    app = make_app(actual_port)

    async def main() -> None:
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.SockSite(runner, sock, shutdown_timeout=2.0)
        await site.start()
        url = public_url(host, actual_port, base, token, show_token=show_token)
        if not is_loopback(host):
            print(
                "Listening on a network address: anyone with the URL below (and its token) can use it.",
                file=sys.stderr,
                flush=True,
            )
        print(f"Serving on {url}", flush=True)
        if on_bound is not None:
            await on_bound(actual_port)
        if open_browser:
            webbrowser.open(url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())
