"""The Jupyter Server options every slicer-cloud user server shares (``slicer-cloud serve`` and
the hub's single-user servers): quiet for people who did not come for Jupyter itself.

- Logging at our level and in our format: Jupyter's INFO lines (extensions linked, language
  servers skipped) show from ``--log-level debug`` only.
- No announcements: JupyterLab's "get notified about official Jupyter news?" pop-up and its
  update check fetch from the internet on the user's behalf; nobody here can act on them.
- Kernels talk to the server over unix sockets (IPC) where the system has them, instead of TCP
  ports any local user could connect to; ipykernel then has nothing to warn about.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from slicer_cloud.logs import DATE_FORMAT, FORMAT, jupyter_log_level

ANNOUNCEMENTS_PLUGIN = "@jupyterlab/apputils-extension:announcements"
#: a unix socket path is at most 107 bytes; the kernel's sockets are named <runtime dir>/kernel-<uuid>-ipc-<port>
MAX_IPC_PREFIX = 107 - len("/kernel-00000000-0000-0000-0000-000000000000-ipc-65535")


def ipc_available(runtime_dir: Path | None = None) -> bool:
    """Whether kernels can use IPC here: ZeroMQ built with it, and socket paths short enough."""
    import zmq
    from jupyter_core.paths import jupyter_runtime_dir

    if not zmq.has("ipc"):
        return False
    return len(str(runtime_dir or jupyter_runtime_dir())) <= MAX_IPC_PREFIX


def server_options(level: str | None = None) -> list[str]:
    """Command-line options for a Jupyter Server (they win over the user's configuration files)."""
    options = [
        f"--ServerApp.log_level={jupyter_log_level(level)}",
        f"--ServerApp.log_format={FORMAT}",
        f"--ServerApp.log_datefmt={DATE_FORMAT}",
        f"--LabApp.log_level={jupyter_log_level(level)}",
        f"--LabApp.log_format={FORMAT}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if ipc_available():
        options.append("--KernelManager.transport=ipc")
    return options


def silence_known_warnings() -> None:
    """Python warnings a user of the server cannot act on. Call it after importing Jupyter."""
    import contextlib

    # voila's import (a server extension here) adds a filter that shows every traitlets
    # deprecation: import it once in a block that undoes its filters on the way out.
    with warnings.catch_warnings(), contextlib.suppress(ImportError):
        warnings.simplefilter("ignore")
        import voila  # noqa: F401
    # jupyter_server computes the default of its own deprecated ServerApp.token while we set
    # IdentityProvider.token, as it asks.
    warnings.filterwarnings("ignore", message=r"ServerApp\.token config is deprecated", category=DeprecationWarning)


def hide_announcements(serverapp: Any) -> None:
    """Turn JupyterLab's announcements plug-in off in the pages this server sends."""
    settings = serverapp.web_app.settings
    previous = settings.get("page_config_hook")

    def hook(handler: Any, page_config: dict) -> dict:
        if previous is not None:
            page_config = previous(handler, page_config)
        disabled = page_config.setdefault("disabledExtensions", {})
        if isinstance(disabled, dict):
            disabled[ANNOUNCEMENTS_PLUGIN] = True
        else:  # a list in older page_config files
            disabled.append(ANNOUNCEMENTS_PLUGIN)
        return page_config

    settings["page_config_hook"] = hook
