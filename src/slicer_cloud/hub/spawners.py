"""Spawners of ``slicer-cloud hub``: JupyterHub's local-process spawners, starting the
slicer-cloud single-user server (:mod:`slicer_cloud.hub.singleuser`) on the portal.

* :class:`SlicerCloudSpawner` (the default): each user's server runs as that user's account on
  this machine (accounts must exist; JupyterHub's PAM login checks their passwords). The
  operating system keeps users' files and processes apart.
* :class:`SlicerCloudDemoSpawner`: no accounts needed; every server runs as the hub's own account
  in its own folder. The hub's login and each server's token checks keep users' pages, services
  and websockets apart, but their notebooks' code could read each other's files: for a demo or
  a trusted class, never for strangers.
"""

from __future__ import annotations

import sys

from jupyterhub.spawner import LocalProcessSpawner, SimpleLocalProcessSpawner
from traitlets import List, Unicode, default


def singleuser_command() -> list[str]:
    return [sys.executable, "-m", "slicer_cloud.hub.singleuser"]


class SlicerCloudSpawner(LocalProcessSpawner):
    """Each user's slicer-cloud server, as that user (see the module's notes)."""

    @default("cmd")
    def _cmd(self) -> list[str]:
        return singleuser_command()

    @default("default_url")
    def _default_url(self) -> str:
        return "/slicer/"


class SlicerCloudDemoSpawner(SimpleLocalProcessSpawner):
    """Each user's slicer-cloud server in ``home_dir_template``, as the hub's account."""

    @default("cmd")
    def _cmd(self) -> list[str]:
        return singleuser_command()

    @default("default_url")
    def _default_url(self) -> str:
        return "/slicer/"

    home_dir_template = Unicode("slicer-cloud-hub/users/{username}", config=True,
                                help="Each user's folder (their data and notebooks); {username} is replaced.")
    #: what the hub passes on from its environment (besides the JUPYTERHUB_ variables)
    env_keep = List(["PATH", "PYTHONPATH", "LANG", "LC_ALL", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "XDG_CACHE_HOME",
                     "VTK_DEFAULT_OPENGL_WINDOW"], config=True)
