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

from slicer_cloud.security import check_request, cookie_name


class TokenMiddleware:
    def __init__(self, app: ASGIApp, *, token: str, port: int, public: tuple[str, ...] = ("/api/health",)):
        self.app = app
        self.token = token
        self.port = port
        self.public = public

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
        decision = check_request(self.token, headers=headers, cookies=cookies, query=query, port=self.port)
        if not decision.allowed:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4403})
                return
            cross_site = decision.reason == "cross-site request refused"
            status = 403 if cross_site else 401
            detail = f"{decision.reason}." + ("" if cross_site else " Send the header 'Authorization: Bearer TOKEN'.")
            response_headers = [(b"content-type", b"application/json")]
            if not cross_site:
                response_headers.append((b"www-authenticate", b'Bearer realm="slicer-cloud"'))
            await send({"type": "http.response.start", "status": status, "headers": response_headers})
            await send({"type": "http.response.body", "body": json.dumps({"detail": detail}).encode()})
            return
        if not decision.from_query:
            await self.app(scope, receive, send)
            return
        cookie = f"{cookie_name(self.port)}={self.token}; HttpOnly; SameSite=Strict; Path=/"
        if scope["scheme"] in ("https", "wss"):
            cookie += "; Secure"
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
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
