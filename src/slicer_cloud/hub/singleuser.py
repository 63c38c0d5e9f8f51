"""The single-user server the hub spawns: JupyterHub's own (``jupyterhub-singleuser``, with
JupyterLab) carrying the portal extension and jupyter-server-proxy. The hub's spawner points it
at ``/slicer/``; each user's services get their own per-launch secrets."""

from __future__ import annotations

import os
import sys

EXTENSION_ARGS = [
    "--ServerApp.jpserver_extensions=slicer_cloud.jupyter=True",
    "--ServerApp.jpserver_extensions=jupyter_server_proxy=True",
]


def main() -> None:
    from jupyterhub.singleuser import main as singleuser_main

    from slicer_cloud.jupyter.server_config import server_options, silence_known_warnings
    from slicer_cloud.logs import setup_logging

    setup_logging()
    silence_known_warnings()  # after importing traitlets, which adds filters of its own
    args = [*EXTENSION_ARGS, *server_options()]
    if os.geteuid() == 0:
        args.append("--ServerApp.allow_root=True")  # the demo spawner in a container runs as root
    sys.argv[1:1] = args
    singleuser_main()


if __name__ == "__main__":
    main()
