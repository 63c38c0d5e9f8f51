"""``slicer-cloud desktop``: a virtual X desktop running Slicer (or a fallback), in a browser tab.

The chain: Xvnc (VNC on a private unix socket) + openbox + the programs, all owned by one
:class:`~slicer_cloud.desktop.supervisor.Supervisor`; an aiohttp server with the page, the noVNC
library and a websocket bridge to the VNC socket, all behind the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import tempfile
import webbrowser
from pathlib import Path
from typing import Any

from aiohttp import web

from slicer_cloud.desktop import proctree, selkies
from slicer_cloud.desktop.bridge import BridgeCounters
from slicer_cloud.desktop.novnc import load_novnc
from slicer_cloud.desktop.programs import find_slicer, plan_desktop, sample_volume
from slicer_cloud.desktop.settings import DesktopSettings, parse_geometry
from slicer_cloud.desktop.supervisor import ProgramSpec, Supervisor
from slicer_cloud.desktop.web import DesktopInfo, make_app
from slicer_cloud.desktop.unix_proxy import UnixProxy
from slicer_cloud.desktop.xserver import start_x_server
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.logs import setup_logging
from slicer_cloud.security import is_loopback, resolve_token
from slicer_cloud.store.paths import DataRoot
from slicer_cloud.web.serving import bind_socket, normalize_base_url, public_url

log = logging.getLogger("slicer_cloud.desktop")


def run_desktop(
    *,
    host: str | None = None,
    port: int | None = None,
    token: str | None = None,
    base_url: str | None = None,
    geometry: str | None = None,
    slicer: Path | None = None,
    app: str | None = None,
    data: Path | None = None,
    open_browser: bool = False,
    gpu: bool = False,
    slicer_args: list[str] | None = None,
    show_token: bool = True,
    allow_tcp_vnc: bool | None = None,
    transport: str | None = None,
) -> None:
    """Serve the desktop until interrupted; raise :class:`SlicerCloudError` on failure.

    Options left None come from the environment (``SLICER_CLOUD_*``) or the defaults.
    """
    overrides: dict[str, Any] = {"host": host, "port": port, "token": token, "base_url": base_url, "geometry": geometry, "data_dir": data,
                                 "allow_tcp_vnc": allow_tcp_vnc, "transport": transport}  # fmt: skip
    try:
        settings = DesktopSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as error:
        raise SlicerCloudError(f"Invalid option: {error}") from None
    setup_logging()
    asyncio.run(
        serve_desktop(
            settings,
            slicer=slicer,
            app=app,
            open_browser=open_browser,
            gpu=gpu,
            slicer_args=slicer_args or [],
            show_token=show_token,
        )
    )


async def serve_desktop(
    settings: DesktopSettings,
    *,
    slicer: Path | None = None,
    app: str | None = None,
    open_browser: bool = False,
    gpu: bool = False,
    slicer_args: list[str] | None = None,
    show_token: bool = True,
) -> None:
    token = resolve_token(settings.host, settings.token)
    if not token:
        # Keystrokes into the desktop are code execution: any local page or user could send them.
        raise SlicerCloudError(
            "The desktop does not run without a token: whoever reaches its page can type into its "
            "programs (a terminal included). Omit --token (and SLICER_CLOUD_TOKEN) to have one generated, "
            "or give one.",
            status=500,
        )
    width, height = parse_geometry(settings.geometry)
    data_dir = DataRoot(settings.data_dir).root
    novnc = load_novnc(settings.novnc_dir, allow_unpinned=settings.novnc_unpinned)
    if settings.transport == "selkies":
        selkies.check_installed()
    slicer_path = find_slicer(slicer, settings.cache_dir)
    sock = bind_socket(settings.host, settings.port)
    port = sock.getsockname()[1]
    base = normalize_base_url(settings.base_url)
    if not is_loopback(settings.host):
        log.warning("Listening on %s: anyone who can reach this port and has the token controls the desktop.", settings.host)

    proctree.become_subreaper()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)

    runtime_dir = Path(tempfile.mkdtemp(prefix="slicer-cloud-desktop-"))  # 0700: only we can reach the sockets
    supervisor = Supervisor(
        max_restarts=settings.max_restarts, restart_window_s=settings.restart_window_s, stop_timeout_s=settings.stop_timeout_s
    )
    runner: web.AppRunner | None = None
    stream_proxy: UnixProxy | None = None
    reaper = asyncio.create_task(supervisor.reap_orphans_forever())
    failure: str | None = None
    try:
        xserver = await start_x_server(
            supervisor,
            runtime_dir,
            width=width,
            height=height,
            depth=settings.depth,
            desktop_name=settings.desktop_name,
            timeout_s=settings.x_start_timeout_s,
            allow_tcp_vnc=settings.allow_tcp_vnc,
        )
        client_env = xserver.client_env()
        await _start_window_manager(supervisor, client_env, data_dir)
        volume = None
        if slicer_path is None and not app:
            volume = await loop.run_in_executor(None, sample_volume, settings.cache_dir)
        plan = plan_desktop(
            slicer=slicer_path, app=app, slicer_args=slicer_args or [], data_dir=data_dir, env=client_env, gpu=gpu, volume=volume
        )
        for note in plan.notes:
            log.warning("%s", note)
        for spec in plan.programs:
            await supervisor.start(spec)
        if plan.message:
            log.warning("%s", plan.message)

        counters = BridgeCounters()
        stream_proxy = None
        if settings.transport == "selkies":
            _program, stream_socket = await selkies.start_selkies(supervisor, client_env, runtime_dir)
            stream_proxy = UnixProxy(stream_socket, selkies.UPSTREAM_PREFIX, counters)
        info = DesktopInfo(
            mode=plan.mode,
            slicer_installed=plan.slicer_installed,
            message=plan.message,
            display=xserver.display_name,
            novnc_version=novnc.version,
            transport=settings.transport,
            programs=lambda: [
                {"name": p.spec.name, "pid": p.pid, "running": p.process.returncode is None, "recent_exits": len(p.exits)}
                for p in supervisor.programs
            ],
        )
        web_app = make_app(
            token=token, port=port, base_url=base, info=info, novnc=novnc, open_vnc=xserver.open_vnc, counters=counters,
            stream_proxy=stream_proxy,
            session_ttl_s=settings.session_cookie_ttl_s, bridge_answers_security=xserver.bridge_answers_security,
        )  # fmt: skip
        runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, sock, shutdown_timeout=2.0).start()
        url = public_url(settings.host, port, base, token, show_token=show_token)
        print(f"Serving on {url}", flush=True)
        if open_browser:
            loop.run_in_executor(None, webbrowser.open, url)

        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({stopper, supervisor.failure}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if supervisor.failure.done():
            failure = supervisor.failure.result()
        else:
            log.info("Stopping the desktop.")
    finally:
        if runner is not None:
            await runner.cleanup()
        if stream_proxy is not None:
            await stream_proxy.close()
        sock.close()
        reaper.cancel()
        await supervisor.stop()
        shutil.rmtree(runtime_dir, ignore_errors=True)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
    if failure:
        raise SlicerCloudError(f"The desktop stopped: {failure}", status=500)


async def _start_window_manager(supervisor: Supervisor, env: dict[str, str], cwd: Path) -> None:
    xsetroot = shutil.which("xsetroot")
    if xsetroot:  # a calm grey instead of the X server's black root window
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            done = await asyncio.create_subprocess_exec(xsetroot, "-solid", "#3c4349", env=env, stderr=asyncio.subprocess.DEVNULL)
            await asyncio.wait_for(done.wait(), 5)
    openbox = shutil.which("openbox")
    if not openbox:
        log.warning("openbox is not installed: windows will have no frames and cannot be moved (apt-get install openbox; `slicer-cloud doctor` checks the rest).")
        return
    await supervisor.start(ProgramSpec(name="window manager (openbox)", argv=[openbox, "--sm-disable"], env=env, cwd=cwd))
