"""``slicer-cloud serve``: one Jupyter Server (with JupyterLab) for everything.

It carries this package's server extension (the portal, the default page) and
jupyter-server-proxy, which starts the viewer, the desktop and the compute API on first use,
all behind Jupyter's token or password.
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from slicer_cloud.config import ServiceSettings, default_cache_dir
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.jupyter.server_config import server_options, silence_known_warnings
from slicer_cloud.logs import setup_logging
from slicer_cloud.security import is_loopback, resolve_token
from slicer_cloud.store.atomic import atomic_output
from slicer_cloud.web.serving import public_url

SAMPLE_NAME = "sample-ct.nrrd"
STARTER_NOTEBOOK = "getting-started.ipynb"
EXTENSIONS = {"jupyterlab": True, "jupyter_server_proxy": True, "slicer_cloud.jupyter": True}


def sample_data_folder(cache_dir: Path | None = None) -> Path:
    """A data folder with the built-in sample CT and a starter notebook, made on first use."""
    from slicer_cloud.core.phantom import sample_path

    cache = cache_dir or default_cache_dir()
    folder = cache / "sample-data"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / SAMPLE_NAME
    if not target.exists():
        with atomic_output(target) as tmp:
            shutil.copyfile(sample_path(cache / "samples"), tmp)
    notebook = folder / STARTER_NOTEBOOK
    if not notebook.exists():
        with atomic_output(notebook) as tmp:
            tmp.write_bytes(resources.files("slicer_cloud.jupyter").joinpath("notebooks", STARTER_NOTEBOOK).read_bytes())
    return folder


def server_args(*, data: Path, ip: str, port: int, token: str, open_browser: bool) -> list[str]:
    """The Jupyter Server options of ``slicer-cloud serve``, as command-line options: they win
    over the user's Jupyter configuration files (a port set there must not move the server)."""
    return [
        f"--ServerApp.ip={ip}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # the port asked for, or a clear failure
        f"--ServerApp.root_dir={data}",
        "--ServerApp.default_url=/slicer/",
        f"--ServerApp.open_browser={open_browser}",
        "--ServerApp.allow_root=True",  # containers and CI run as root; the token still applies
        f"--IdentityProvider.token={token}",
        *server_options(),
    ]


def run_serve(*, data: Path | None, ip: str, port: int, token: str | None, open_browser: bool) -> None:
    # --token wins; else SLICER_CLOUD_TOKEN (never only the command line, which every local user
    # can read in /proc). Taken out of the environment: kernels and terminals need not see it.
    if token is None:
        try:
            token = ServiceSettings().token
        except ValueError as error:
            raise SlicerCloudError(f"Invalid SLICER_CLOUD_* setting: {error}") from None
    os.environ.pop("SLICER_CLOUD_TOKEN", None)
    token = resolve_token(ip, token)
    setup_logging()  # our own modules and libraries; Jupyter's loggers follow server_options()
    if data is None:
        data = sample_data_folder()
        print(f"No --data given: serving the sample data folder {data}", flush=True)
    if not data.is_dir():
        raise SlicerCloudError(f"--data {data} is not a folder.")
    data = data.resolve()
    # The proxied services, started later by this process, read their data folder from here.
    os.environ["SLICER_CLOUD_DATA_DIR"] = str(data)
    from jupyter_server.serverapp import ServerApp  # after the checks: a bad option fails at once
    from traitlets.config import Config

    silence_known_warnings()  # after importing traitlets, which adds filters of its own

    class SlicerCloudServer(ServerApp):
        def start_app(self) -> None:
            super().start_app()
            # Jupyter binds its port in a callback of the event loop queued at initialize();
            # queued after it, the URL is printed only once the port answers.
            self.io_loop.add_callback(self._announce)

        def _announce(self) -> None:
            if not is_loopback(self.ip):
                print("Listening on a network address: anyone with the URL below (and its token) can use it.", flush=True)
            print(f"Serving on {public_url(self.ip, self.port, self.base_url + 'slicer/', token)}", flush=True)

    app = SlicerCloudServer(config=Config({"ServerApp": {"jpserver_extensions": dict(EXTENSIONS)}}))
    app.initialize(argv=server_args(data=data, ip=ip, port=port, token=token, open_browser=open_browser))
    app.start()
