"""Jupyter integration: the server extension (the portal at ``/slicer/``), the
jupyter-server-proxy entries of the three services (:mod:`.proxy`) and ``slicer-cloud serve``.

Installing the package enables the extension in every Jupyter Server of its environment
(``etc/jupyter/jupyter_server_config.d/slicer_cloud.json``).
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "slicer_cloud.jupyter"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from slicer_cloud.jupyter.portal import setup_portal

    setup_portal(serverapp)


# The name Jupyter Server looked up before version 2 (still read by some launchers).
load_jupyter_server_extension = _load_jupyter_server_extension
