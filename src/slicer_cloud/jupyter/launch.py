"""Starts one service for jupyter-server-proxy: ``python -m slicer_cloud.jupyter.launch
viewer|desktop|api --port PORT --base-url PREFIX``.

The token is the per-launch secret from the environment (see :mod:`slicer_cloud.jupyter.proxy`);
it is removed from the environment before anything starts, so the service's own children
(session processes, the desktop's programs, job processes) never see it. The data folder is
``SLICER_CLOUD_DATA_DIR`` (set by ``slicer-cloud serve`` and by the server extension).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from slicer_cloud.desktop import proctree
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.logs import setup_logging
from slicer_cloud.jupyter.proxy import SECRET_ENV

HOST = "127.0.0.1"


def data_dir() -> Path:
    return Path(os.environ.get("SLICER_CLOUD_DATA_DIR") or os.getcwd()).resolve()


def take_secret() -> str:
    secret = os.environ.pop(SECRET_ENV, "")
    if not secret:
        raise SlicerCloudError(f"{SECRET_ENV} is not set: this command is started by jupyter-server-proxy.", status=500)
    return secret


def launch_viewer(port: int, base_url: str, secret: str) -> None:
    from slicer_cloud.viewer.service import run_viewer

    run_viewer(
        paths=[], data=data_dir(), host=HOST, port=port, token=secret, base_url=base_url, open_browser=False, show_token=False
    )


def launch_desktop(port: int, base_url: str, secret: str) -> None:
    from slicer_cloud.desktop.service import run_desktop

    run_desktop(host=HOST, port=port, token=secret, base_url=base_url, data=data_dir(), show_token=False)


def launch_api(port: int, base_url: str, secret: str) -> None:
    import uvicorn

    from slicer_cloud.compute.api import create_app
    from slicer_cloud.compute.service import ComputeService
    from slicer_cloud.compute.settings import ComputeSettings
    from slicer_cloud.jupyter.prefixed import PrefixedApi
    from slicer_cloud.store.paths import DataRoot
    from slicer_cloud.web.serving import bind_socket

    root = DataRoot(data_dir())
    sock = bind_socket(HOST, port)
    settings = ComputeSettings(host=HOST, port=sock.getsockname()[1], token=secret, data_dir=root.root)
    setup_logging()
    service = ComputeService.start(settings)
    app = PrefixedApi(create_app(settings, secret, service=service), prefix=base_url)
    print(f"Serving on http://{HOST}:{settings.port}{base_url} (compute API, data folder {root.root})", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level=None, log_config=None, access_log=False, timeout_graceful_shutdown=5, lifespan="on"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


LAUNCHERS = {"viewer": launch_viewer, "desktop": launch_desktop, "api": launch_api}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m slicer_cloud.jupyter.launch", description=__doc__)
    parser.add_argument("service", choices=sorted(LAUNCHERS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--base-url", required=True, help="The public prefix, e.g. /user/ada/slicer-viewer/.")
    args = parser.parse_args(argv)
    # jupyter-server-proxy stops its services when Jupyter stops cleanly; after a kill -9 of the
    # Jupyter server (or of a hub user's server) they would live on, orphaned, holding ports and
    # memory. The kernel ends them with their parent instead.
    proctree.set_parent_death_signal()
    try:
        LAUNCHERS[args.service](args.port, args.base_url, take_secret())
    except SlicerCloudError as error:
        print(f"error: {error.message}", file=sys.stderr, flush=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
