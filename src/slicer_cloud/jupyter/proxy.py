"""jupyter-server-proxy entries for the viewer, the desktop and the compute API.

Registered through the ``jupyter_serverproxy_servers`` entry point group, so any Jupyter Server
with this package installed serves them at ``<base_url>slicer-viewer/``, ``slicer-desktop/``
and ``slicer-api/``, each started on first use and behind Jupyter's login (websockets included).

Each service listens on 127.0.0.1 and demands a secret made for this Jupyter Server: the secret
reaches the service in its environment (which other users of the machine cannot read, unlike a
command line) and the proxy adds it to every request it forwards as ``Authorization: Bearer``.
Another local user can connect to the port, but not past the token check.
"""

from __future__ import annotations

import secrets
import sys
from importlib import resources
from typing import Any

#: the environment variable the launcher reads the secret from (and removes at once)
SECRET_ENV = "SLICER_CLOUD_PROXY_SECRET"

#: name -> (title, module of slicer_cloud.jupyter.launch, whether the service sees the full path)
SERVICES: dict[str, tuple[str, bool]] = {
    # The viewer and the desktop build absolute links under their prefix: they get the full path.
    "slicer-viewer": ("Slicer viewer", True),
    "slicer-desktop": ("Slicer desktop", True),
    # The API routes from "/" and learns its prefix from the launcher (OpenAPI page, servers).
    "slicer-api": ("Slicer compute API", False),
}
START_TIMEOUT_S = 90.0

_secrets: dict[str, str] = {}


def service_secret(name: str) -> str:
    """The secret of one service, made once per Jupyter Server process."""
    if name not in _secrets:
        _secrets[name] = secrets.token_urlsafe(32)
    return _secrets[name]


def _icon(name: str) -> str:
    return str(resources.files("slicer_cloud.jupyter").joinpath("icons", f"{name}.svg"))


def server_config(name: str) -> dict[str, Any]:
    """The jupyter-server-proxy configuration of one service."""
    title, absolute = SERVICES[name]
    secret = service_secret(name)
    kind = name.removeprefix("slicer-")
    command = [sys.executable, "-m", "slicer_cloud.jupyter.launch", kind, "--port", "{port}",
               "--base-url", "{base_url}" + name + "/"]  # fmt: skip
    return {
        "command": command,
        "environment": {SECRET_ENV: secret},
        "request_headers_override": {"Authorization": f"Bearer {secret}"},
        "absolute_url": absolute,
        "timeout": START_TIMEOUT_S,
        "new_browser_tab": True,
        # JupyterLab draws the icons of the "Notebook" and "Console" sections only.
        "launcher_entry": {"title": title, "icon_path": _icon(kind), "category": "Notebook"},
    }


def viewer() -> dict[str, Any]:
    from slicer_cloud.jupyter.portal import attach_to_running_server

    attach_to_running_server()  # the portal, where the extension's config file is missing
    return server_config("slicer-viewer")


def desktop() -> dict[str, Any]:
    return server_config("slicer-desktop")


def api() -> dict[str, Any]:
    return server_config("slicer-api")
