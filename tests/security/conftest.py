"""Helpers of the security tests: another local web page, as an attacker would run one."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class AttackerSite:
    url: str
    #: the Cookie header of every request the browser sent to this page
    cookies: list[str] = field(default_factory=list)


@contextlib.contextmanager
def attacker_site(body: str) -> Iterator[AttackerSite]:
    """Another web page on this machine (another local user's, say): a real loopback server on a
    free port, so that the browser treats it as the local page it would be, and sends it the
    host's cookies as browsers do for every port of a host."""
    page = body.encode()
    site = AttackerSite(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            site.cookies.append(self.headers.get("Cookie", ""))
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    site.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
