"""The JupyterHub configuration ``slicer-cloud hub`` starts from; a ``--config`` file is applied
on top of it, so anything here can be changed there."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from traitlets.config import Config

from slicer_cloud.hub import spawners  # noqa: F401 - before the hub starts: batchspawner's API for SLURM jobs
from slicer_cloud.hub.settings import HubSettings
from slicer_cloud.logs import DATE_FORMAT, FORMAT, LOG_LEVEL_ENV, jupyter_log_level, resolve_level
from slicer_cloud.web.serving import free_port

CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


def hub_config(*, ip: str, port: int, state_dir: Path, proxy_command: Path, settings: HubSettings) -> Config:
    c = Config()
    c.JupyterHub.ip = ip
    c.JupyterHub.port = port
    # The hub itself and the proxy's API listen on loopback only; users reach the public proxy.
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = settings.hub_port or free_port()
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.proxy_api_port or free_port()}"
    c.ConfigurableHTTPProxy.command = [str(proxy_command)]
    c.ConfigurableHTTPProxy.pid_file = str(state_dir / "proxy.pid")
    c.JupyterHub.db_url = f"sqlite:///{state_dir / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(state_dir / "jupyterhub.pid")
    c.JupyterHub.spawner_class = settings.spawner
    c.JupyterHub.log_level = jupyter_log_level()
    c.JupyterHub.log_format = FORMAT
    c.JupyterHub.log_datefmt = DATE_FORMAT
    c.ConfigurableHTTPProxy.debug = resolve_level() == "debug"
    # the single-user servers log at the hub's level
    c.Spawner.environment = {LOG_LEVEL_ENV: resolve_level()}
    c.Spawner.start_timeout = settings.start_timeout_s
    c.Spawner.http_timeout = settings.start_timeout_s
    # Users' folders live beside the state folder, never in it: a demo user's server runs as the
    # hub's account, and its file browser and notebooks start in that folder.
    users_dir = settings.users_dir or state_dir.parent / f"{state_dir.name}-users"
    c.SlicerCloudDemoSpawner.home_dir_template = str(Path(users_dir).resolve() / "{username}")
    c.SlicerCloudDemoSpawner.hub_state_dir = str(state_dir)
    c.SlicerCloudSlurmSpawner.hub_state_dir = str(state_dir)
    if settings.cull:
        c.JupyterHub.services = [{
            "name": "idle-culler",
            "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={settings.idle_timeout_s}",
                        f"--cull-every={settings.cull_every_s}"],
        }]  # fmt: skip
        c.JupyterHub.load_roles = [{"name": "idle-culler", "scopes": CULLER_SCOPES, "services": ["idle-culler"]}]
    return c
