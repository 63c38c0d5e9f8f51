"""Access tokens, shared by every service.

Rules (the same for the viewer, the desktop and the compute API):

* A service binds 127.0.0.1 by default. A non-loopback address is refused without a token.
* A token is generated unless one is given; an empty token disables the check, on loopback only,
  and then only requests whose ``Host`` is a loopback name pass (a DNS-rebinding page, whose
  ``Host`` is its own domain, is refused).
* The token is accepted as ``Authorization: Bearer TOKEN`` or once as ``?token=``: the server
  then sets an HttpOnly, SameSite=Strict cookie and redirects to the same URL without the token,
  so it does not linger in the address bar or history. The cookie holds a short-lived session id,
  never the token: browsers send a host's cookies to every port of it, so any other local web
  page receives it; it cannot use it as the token, nor on another port, nor after it expires.
* Websocket upgrades are checked like any request, and a cross-site request is refused even with
  the token: a foreign ``Origin``, ``Origin: null`` (sandboxed frames; also a browser's own form
  posts under ``Referrer-Policy: no-referrer``, accepted only when the browser vouches with
  ``Sec-Fetch-Site: same-origin``), and an unsafe method that the browser marks as cross-site.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from slicer_cloud.errors import SlicerCloudError


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def generate_token() -> str:
    return secrets.token_urlsafe(24)


def resolve_token(host: str, token: str | None) -> str:
    """The token a service runs with: the one given, a generated one, or '' (no check).

    An empty token (no check) is only allowed on a loopback address.
    """
    if token is None:
        return generate_token()
    if token == "" and not is_loopback(host):
        raise SlicerCloudError(
            f"Refusing to listen on {host} without a token: anyone who can reach this machine "
            "could use it. Give --token, or omit --token to have one generated.",
            status=500,
        )
    return token


def cookie_name(port: int) -> str:
    # Cookies are per host, not per port: two services on one host must not overwrite each other.
    return f"slicer_cloud_token_{port}"


def tokens_equal(given: str | None, expected: str) -> bool:
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


#: how long a session cookie lasts unless renewed (see :class:`CookieSessions`)
DEFAULT_SESSION_TTL_S = 3600.0
#: signs session ids; made anew by each process, so a restart ends every browser session
_PROCESS_KEY = secrets.token_bytes(32)


class CookieSessions:
    """Session ids for the token cookie: ``v1.EXPIRES.NONCE.MAC``, the MAC an HMAC (with a key
    of this process only) over the service's port, the expiry and the nonce.

    What a page on another port of the same host can do with the cookie it receives: not use it
    as the token (it is not), not use it on another service (bound to the port), and not for
    long (it expires; renewed while the user's browser keeps using it).
    """

    def __init__(self, port: int, ttl_s: float = DEFAULT_SESSION_TTL_S, *, key: bytes | None = None):
        self.port = port
        self.ttl_s = ttl_s
        self._key = key or _PROCESS_KEY

    def _mac(self, expires: int, nonce: str) -> str:
        message = f"{self.port}.{expires}.{nonce}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def issue(self, now: float | None = None) -> str:
        expires = int((now if now is not None else time.time()) + self.ttl_s)
        nonce = secrets.token_urlsafe(12)
        return f"v1.{expires}.{nonce}.{self._mac(expires, nonce)}"

    def remaining_s(self, value: str | None, now: float | None = None) -> float:
        """Seconds the session id has left; 0 for an expired, forged or foreign one."""
        if not value:
            return 0.0
        parts = value.split(".")
        if len(parts) != 4 or parts[0] != "v1" or not parts[1].isdigit():
            return 0.0
        expires, nonce, mac = int(parts[1]), parts[2], parts[3]
        if not hmac.compare_digest(mac.encode(), self._mac(expires, nonce).encode()):
            return 0.0
        return max(0.0, expires - (now if now is not None else time.time()))


@dataclass(frozen=True)
class AuthDecision:
    """What a request's credentials amount to."""

    allowed: bool
    #: the token came in the query string: set the cookie and redirect to the clean URL.
    from_query: bool = False
    reason: str = ""
    #: set a fresh session cookie with the answer (first login, or the session is half gone).
    set_cookie: bool = False


CROSS_SITE = "cross-site request refused"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return headers.get(name) or headers.get(name.lower())


def host_name(host_header: str) -> str:
    """``127.0.0.1:8080`` -> ``127.0.0.1``; ``[::1]:8080`` -> ``::1``."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")] if "]" in host_header else host_header
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def is_cross_site(headers: Mapping[str, str], method: str = "GET") -> bool:
    """True for a request a page of another site (or an opaque origin) made the browser send."""
    origin = _header(headers, "Origin")
    host = _header(headers, "Host")
    fetch_site = (_header(headers, "Sec-Fetch-Site") or "").lower()
    if origin == "null":
        # A sandboxed frame or a data: page. A browser also sends it for its own same-origin
        # form posts under Referrer-Policy no-referrer, and then says so in Sec-Fetch-Site,
        # which no page can set.
        return fetch_site != "same-origin"
    if origin and host and urlsplit(origin).netloc != host:
        return True
    # No Origin (or a matching one): the browser's own verdict, for anything that changes state.
    return method.upper() not in _SAFE_METHODS and fetch_site in ("cross-site", "same-site")


def check_request(
    expected: str,
    *,
    headers: Mapping[str, str],
    cookies: Mapping[str, str],
    query: Mapping[str, str],
    port: int,
    method: str = "GET",
    sessions: CookieSessions | None = None,
) -> AuthDecision:
    """Decide whether a request may pass. ``expected == ''`` means no token is in force."""
    if is_cross_site(headers, method):
        return AuthDecision(False, reason=CROSS_SITE)
    if expected == "":
        host = _header(headers, "Host")
        if host and not is_loopback(host_name(host)):
            # No token: only this machine's own names (a DNS-rebinding page has its own).
            return AuthDecision(False, reason=f"without a token only a loopback Host is accepted, not {host[:100]!r}")
        return AuthDecision(True)
    sessions = sessions or CookieSessions(port)
    auth = _header(headers, "Authorization") or ""
    if auth.lower().startswith("bearer ") and tokens_equal(auth[7:].strip(), expected):
        return AuthDecision(True)
    if "token" in query:
        if tokens_equal(query.get("token"), expected):
            return AuthDecision(True, from_query=True, set_cookie=True)
        return AuthDecision(False, reason="wrong token")
    cookie = cookies.get(cookie_name(port))
    left = sessions.remaining_s(cookie)
    if left > 0:
        return AuthDecision(True, set_cookie=left < sessions.ttl_s / 2)
    if cookie:
        return AuthDecision(False, reason="the session has expired (or the service restarted)")
    return AuthDecision(False, reason="a token is required")
