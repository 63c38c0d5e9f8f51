"""Token middleware for aiohttp services. See :mod:`slicer_cloud.security` for the rules."""

from __future__ import annotations

from aiohttp import web

from slicer_cloud.security import CROSS_SITE, DEFAULT_SESSION_TTL_S, CookieSessions, check_request, cookie_name

#: handlers decorated with this are reachable without a token (health checks only).
PUBLIC_ATTR = "_slicer_cloud_public"


def public(handler):
    setattr(handler, PUBLIC_ATTR, True)
    return handler


def token_middleware(
    token: str, port: int, *, login_hint: str = "", session_ttl_s: float = DEFAULT_SESSION_TTL_S
) -> web.middleware:
    """Refuse every request, websocket upgrades included, that lacks the token."""
    sessions = CookieSessions(port, session_ttl_s)

    @web.middleware
    async def middleware(request: web.Request, handler):
        if getattr(handler, PUBLIC_ATTR, False):
            return await handler(request)
        decision = check_request(
            token,
            headers=request.headers,
            cookies=request.cookies,
            query=request.query,
            port=port,
            method=request.method,
            sessions=sessions,
        )
        if not decision.allowed:
            message = f"403 Forbidden: {decision.reason}."
            if decision.reason != CROSS_SITE:
                message += " Open the URL printed by slicer-cloud (it ends with ?token=...)."
            if login_hint:
                message += " " + login_hint
            return web.Response(status=403, text=message + "\n", content_type="text/plain")
        if decision.from_query and request.method in ("GET", "HEAD") and "Upgrade" not in request.headers:
            clean = request.rel_url.with_query([(k, v) for k, v in request.query.items() if k != "token"])
            response = web.HTTPFound(location=str(clean))
            _set_cookie(response, sessions, request)
            raise response
        response = await handler(request)
        if isinstance(response, web.StreamResponse) and not response.prepared:
            apply_security_headers(response)
            if decision.set_cookie:
                _set_cookie(response, sessions, request)
        return response

    return middleware


#: sent with every response: no framing by other sites, no MIME sniffing, and no URL (which may
#: hold a token or session secret for an instant) leaked to other sites as a referrer.
SECURITY_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def apply_security_headers(response: web.StreamResponse) -> None:
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)


def _set_cookie(response: web.StreamResponse, sessions: CookieSessions, request: web.Request) -> None:
    # A session id, never the token: the cookie reaches every port of this host.
    response.set_cookie(
        cookie_name(sessions.port),
        sessions.issue(),
        max_age=int(sessions.ttl_s),
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
    )


__all__ = ["SECURITY_HEADERS", "apply_security_headers", "public", "token_middleware"]
