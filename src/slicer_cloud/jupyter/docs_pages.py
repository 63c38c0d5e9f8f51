"""The project's guides (``docs/*.md``) served by the portal at ``slicer/docs/NAME.md``, so the
portal's links work without internet access. They come from the source tree (a clone, as
``make demo`` runs) or from ``share/slicer-cloud/docs`` of a pip installation."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from jupyter_server.base.handlers import JupyterHandler
from tornado import web
from tornado.escape import xhtml_escape

NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} · slicer-cloud</title>
<link rel="stylesheet" href="../static/portal.css"></head><body class="doc"><main class="doc">{body}</main></body></html>"""


def docs_folder() -> Path | None:
    here = Path(__file__).resolve()
    for candidate in (here.parents[3] / "docs", Path(sys.prefix) / "share" / "slicer-cloud" / "docs"):
        if (candidate / "viewer.md").is_file():
            return candidate
    return None


class DocsPage(JupyterHandler):
    """``GET slicer/docs/NAME.md`` (a guide as HTML) and ``slicer/docs/img/NAME.png``."""

    @web.authenticated
    def get(self, kind: str, name: str) -> None:
        folder = docs_folder()
        if folder is None or not NAME.match(name):
            raise web.HTTPError(404)
        if kind == "img/":
            path = folder / "img" / f"{name}.png"
            if not path.is_file():
                raise web.HTTPError(404)
            self.set_header("Content-Type", "image/png")
            self.finish(path.read_bytes())
            return
        path = folder / f"{name}.md"
        if not path.is_file():
            raise web.HTTPError(404)
        import mistune

        text = path.read_text()
        title = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("# ")), name)
        body = mistune.html(text)  # our own files; raw HTML in them is ours too
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(_PAGE.format(title=xhtml_escape(title), body=body))
