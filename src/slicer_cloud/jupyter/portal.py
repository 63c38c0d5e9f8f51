"""The portal at ``<base_url>slicer/``: the data folder's items with thumbnails and, for each,
"Open in viewer" and "Process"; the job list; links to the desktop, JupyterLab and the API docs.

The page is static; everything it shows comes from the compute API through the proxy
(``slicer-api/``), so this process never parses an image. The only route of its own lists the
data folder's file names, which the page registers with the API on first sight.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

from slicer_cloud import __version__
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.jupyter.docs_pages import DocsPage
from slicer_cloud.jupyter.running import RunningList, RunningStop
from slicer_cloud.jupyter.server_config import hide_announcements
from slicer_cloud.store.paths import DataRoot

#: files the portal offers (images and surface models); DICOM folders are registered from the API
LISTED_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd", ".stl", ".obj", ".vtp", ".ply")
MAX_LISTED = 2000
#: the page's files; each section of the page is a script of its own (see index.html)
_STATIC = {
    "common.js": "text/javascript",
    "portal.js": "text/javascript",
    "running.js": "text/javascript",
    "pacs.js": "text/javascript",
    "portal.css": "text/css",
    "logo.svg": "image/svg+xml",
}
#: the launcher icons of the four ways to work (``icon-NAME.svg``), shared with JupyterLab's launcher
_ICONS = ("viewer", "desktop", "notebook", "api")
_PAGE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


def _read(name: str) -> bytes:
    return resources.files("slicer_cloud.jupyter").joinpath("portal", name).read_bytes()


def data_folder(serverapp: Any) -> Path:
    """The data folder the portal and the proxied services share."""
    return Path(os.environ.get("SLICER_CLOUD_DATA_DIR") or serverapp.root_dir).resolve()


class PortalSlash(JupyterHandler):
    """``slicer`` -> ``slicer/``, for logged-in users only (like every route of the portal)."""

    @web.authenticated
    def get(self) -> None:
        self.redirect(url_path_join(self.base_url, "slicer/"))


class PortalPage(JupyterHandler):
    @web.authenticated
    def get(self) -> None:
        page = _read("index.html").decode()
        page = page.replace("{{base_url}}", json.dumps(self.base_url)[1:-1]).replace("{{version}}", __version__)
        # Jupyter's XSRF check for the page's POSTs (stop a service); reading it sets the cookie
        page = page.replace("{{xsrf}}", self.xsrf_token.decode())
        for key, value in _PAGE_HEADERS.items():
            self.set_header(key, value)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(page)


class PortalStatic(JupyterHandler):
    @web.authenticated
    def get(self, name: str) -> None:
        if name in _STATIC:
            content_type, body = _STATIC[name], _read(name)
        elif name.removeprefix("icon-").removesuffix(".svg") in _ICONS and name.startswith("icon-") and name.endswith(".svg"):
            content_type = "image/svg+xml"
            body = resources.files("slicer_cloud.jupyter").joinpath("icons", name.removeprefix("icon-")).read_bytes()
        else:
            raise web.HTTPError(404)
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(body)


class PortalFiles(APIHandler):
    """``GET slicer/files``: the image and model files of the data folder (names only)."""

    def initialize(self, root: Path) -> None:
        self.root = root

    @web.authenticated
    def get(self) -> None:
        try:
            data = DataRoot(self.root)
        except SlicerCloudError as error:
            raise web.HTTPError(error.status, error.message) from None
        files = []
        for path in data.walk(max_entries=MAX_LISTED * 5):
            if path.is_file() and path.name.lower().endswith(LISTED_SUFFIXES):
                files.append({"path": data.relative(path), "size": path.stat().st_size})
            if len(files) >= MAX_LISTED:
                break
        self.finish({"root": str(self.root), "files": files, "truncated": len(files) >= MAX_LISTED})


def portal_handlers(base: str, root: Path) -> list[tuple]:
    """The portal's routes (the route table the no-unauthenticated-route test walks)."""
    return [
        (url_path_join(base, "slicer"), PortalSlash),
        (url_path_join(base, "slicer/"), PortalPage),
        (url_path_join(base, r"slicer/static/([a-z.-]+)"), PortalStatic),
        (url_path_join(base, "slicer/files"), PortalFiles, {"root": root}),
        (url_path_join(base, r"slicer/docs/(img/)?([a-z0-9-]+)\.(?:md|png)"), DocsPage),
        (url_path_join(base, "slicer/running"), RunningList),
        (url_path_join(base, r"slicer/running/([a-z-]+)/stop"), RunningStop),
    ]


def setup_portal(serverapp: Any) -> None:
    """Add the portal's routes (once, whichever of the two ways below calls first)."""
    settings = serverapp.web_app.settings
    if settings.get("slicer_cloud_portal"):
        return
    settings["slicer_cloud_portal"] = True
    hide_announcements(serverapp)
    root = data_folder(serverapp)
    # The proxied services are started by this process: they inherit the data folder from here.
    os.environ.setdefault("SLICER_CLOUD_DATA_DIR", str(root))
    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", portal_handlers(base, root))
    serverapp.log.info("slicer-cloud portal at %sslicer/ (data folder %s)", base, root)


def attach_to_running_server() -> None:
    """Set up the portal in the Jupyter Server that is loading jupyter-server-proxy's entries.

    The extension is enabled by a file the package installs into ``etc/jupyter``, but editable
    installs (``pip install -e .``) install no such files. jupyter-server-proxy reads this
    package's entry points in every Jupyter Server it runs in, so they also call this.
    """
    try:
        from jupyter_server.serverapp import ServerApp
    except ImportError:  # pragma: no cover - jupyter-server-proxy needs it
        return
    if not ServerApp.initialized():
        return
    serverapp = ServerApp.instance()
    if getattr(serverapp, "web_app", None) is not None:
        setup_portal(serverapp)
