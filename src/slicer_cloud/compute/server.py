"""``slicer-cloud api``: start the compute API on uvicorn."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from slicer_cloud.compute.settings import ComputeSettings
from slicer_cloud.logs import setup_logging
from slicer_cloud.security import is_loopback, resolve_token
from slicer_cloud.store.paths import DataRoot
from slicer_cloud.web.serving import bind_socket


def _bind(host: str, port: int) -> socket.socket:
    sock = bind_socket(host, port)  # uvicorn re-listens with its own backlog
    sock.set_inheritable(True)
    return sock


def run_api(
    *,
    data: Path | None,
    host: str,
    port: int,
    token: str | None,
    engine: str,
    scheduler: str | None,
    workers: int | None,
    modules_path: list[Path],
) -> None:
    import uvicorn

    from slicer_cloud.compute.api import create_app
    from slicer_cloud.compute.service import ComputeService

    root = DataRoot(data or Path.cwd())  # refuses a missing folder before anything starts
    values: dict = {"host": host, "port": port, "data_dir": root.root, "engine": engine,
                    "scheduler": scheduler, "modules_path": modules_path}
    if workers:
        values["workers"] = workers
    settings = ComputeSettings(**values)  # the rest from SLICER_CLOUD_* variables
    token = resolve_token(host, token if token is not None else settings.token)
    settings.token = token
    sock = _bind(host, port)
    settings.port = sock.getsockname()[1]
    setup_logging()
    service = ComputeService.start(settings)
    shown_host = host if ":" not in host else f"[{host}]"
    base = f"http://{shown_host}:{settings.port}"
    engine_text = ", ".join(f"{k}={v}" for k, v in service.engine.describe().items())
    print(f"Serving on {base}/docs" + (f"?token={token}" if token else ""), flush=True)
    print(f"  compute API, data folder {root.root}, {engine_text}", flush=True)
    if token:
        print(f"  try:  curl -H 'Authorization: Bearer {token}' {base}/api/modules", flush=True)
    else:
        print("  no token (loopback only)", flush=True)
    if not is_loopback(host):
        print("  listening beyond this machine: put it behind HTTPS (a reverse proxy) before real use", flush=True)
    app = create_app(settings, token, service=service)
    config = uvicorn.Config(app, log_level=None, log_config=None, access_log=False, timeout_graceful_shutdown=5, lifespan="on")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if not server.started:
        sys.exit(1)
