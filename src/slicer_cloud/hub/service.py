"""``slicer-cloud hub``: JupyterHub with slicer-cloud single-user servers, idle ones culled."""

from __future__ import annotations

import os
from pathlib import Path

from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.hub.chp import ensure_proxy
from slicer_cloud.hub.config import hub_config
from slicer_cloud.hub.settings import HubSettings
from slicer_cloud.security import is_loopback
from slicer_cloud.web.serving import public_url


def run_hub(*, ip: str, port: int, config: Path | None, state_dir: Path | None, settings: HubSettings | None = None) -> None:
    from jupyterhub.app import JupyterHub

    settings = settings or HubSettings()
    if config is not None and not config.is_file():
        raise SlicerCloudError(f"--config {config} is not a file.")
    state_dir = (state_dir or Path.cwd() / "slicer-cloud-hub").resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)  # the database and the cookie secret
    defaults = hub_config(ip=ip, port=port, state_dir=state_dir, proxy_command=ensure_proxy(), settings=settings)

    class SlicerCloudHub(JupyterHub):
        async def start(self) -> None:
            await super().start()
            if not is_loopback(self.ip or "0.0.0.0"):
                print("Listening on a network address: put HTTPS in front of it (JupyterHub.ssl_cert or a reverse proxy).", flush=True)
            print(f"Serving on {public_url(self.ip, self.port, self.base_url + 'hub/', '')}", flush=True)

    SlicerCloudHub.instance(config=defaults)
    argv = ["--config", str(config.resolve())] if config is not None else []
    SlicerCloudHub.launch_instance(argv)
