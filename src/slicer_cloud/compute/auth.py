"""Token checks for the compute API: the rules of :mod:`slicer_cloud.security`, as ASGI
middleware so that every route, the OpenAPI page included, is covered; only the paths in
``public`` (the health check) answer without a token.

API clients send ``Authorization: Bearer TOKEN``. A browser opens ``/docs?token=TOKEN`` once:
the answer sets an HttpOnly, SameSite=Strict cookie and redirects to the URL without the token.
"""

from __future__ import annotations

import json
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from slicer_cloud.security import CROSS_SITE, DEFAULT_SESSION_TTL_S, CookieSessions, check_request, cookie_name


class TokenMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str,
        port: int,
        public: tuple[str, ...] = ("/api/health",),
        session_ttl_s: float = DEFAULT_SESSION_TTL_S,
    ):
        self.app = app
        self.token = token
        self.port = port
        self.public = public
        self.sessions = CookieSessions(port, session_ttl_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in self.public:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        cookies: dict[str, str] = {}
        if "cookie" in headers:
            parsed = SimpleCookie()
            try:
                parsed.load(headers["cookie"])
            except Exception:  # noqa: BLE001 - a malformed cookie header is simply no cookie
                parsed = SimpleCookie()
            cookies = {key: morsel.value for key, morsel in parsed.items()}
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        method = scope.get("method", "GET")
        decision = check_request(
            self.token, headers=headers, cookies=cookies, query=query, port=self.port, method=method, sessions=self.sessions
        )
        if not decision.allowed:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4403})
                return
            # A token would not help a cross-site request, nor one with a foreign Host when no token is in force.
            forbidden = decision.reason == CROSS_SITE or self.token == ""
            status = 403 if forbidden else 401
            detail = f"{decision.reason}." + ("" if forbidden else " Send the header 'Authorization: Bearer TOKEN'.")
            response_headers = [(b"content-type", b"application/json")]
            if not forbidden:
                response_headers.append((b"www-authenticate", b'Bearer realm="slicer-cloud"'))
            await send({"type": "http.response.start", "status": status, "headers": response_headers})
            await send({"type": "http.response.body", "body": json.dumps({"detail": detail}).encode()})
            return
        if not decision.set_cookie or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # A session id, never the token: the cookie reaches every port of this host.
        cookie = (f"{cookie_name(self.port)}={self.sessions.issue()}; Max-Age={int(self.sessions.ttl_s)}; "
                  "HttpOnly; SameSite=Strict; Path=/")  # fmt: skip
        if scope["scheme"] in ("https", "wss"):
            cookie += "; Secure"
        if decision.from_query and scope["method"] in ("GET", "HEAD"):
            # Redirect to the same URL without the token, so it leaves the address bar.
            clean = urlencode([(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True) if k != "token"])
            location = scope.get("root_path", "") + scope["path"] + (f"?{clean}" if clean else "")
            await send({
                "type": "http.response.start",
                "status": 302,
                "headers": [(b"location", location.encode("latin-1")), (b"set-cookie", cookie.encode("latin-1"))],
            })
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + [(b"set-cookie", cookie.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, send_with_cookie)
