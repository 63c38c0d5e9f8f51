"""Access tokens, shared by every service.

Rules (the same for the viewer, the desktop and the compute API):

* A service binds 127.0.0.1 by default. A non-loopback address is refused without a token.
* A token is generated unless one is given; an empty token disables the check, on loopback only.
* The token is accepted as ``Authorization: Bearer TOKEN``, as a cookie, or once as ``?token=``:
  the server then sets an HttpOnly, SameSite=Strict cookie and redirects to the same URL without
  the token, so it does not linger in the address bar or history.
* Websocket upgrades are checked like any request, and a cross-site ``Origin`` is refused.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
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


@dataclass(frozen=True)
class AuthDecision:
    """What a request's credentials amount to."""

    allowed: bool
    #: the token came in the query string: set the cookie and redirect to the clean URL.
    from_query: bool = False
    reason: str = ""


def check_request(
    expected: str,
    *,
    headers: Mapping[str, str],
    cookies: Mapping[str, str],
    query: Mapping[str, str],
    port: int,
) -> AuthDecision:
    """Decide whether a request may pass. ``expected == ''`` means no token is in force."""
    origin = headers.get("Origin") or headers.get("origin")
    host = headers.get("Host") or headers.get("host")
    if origin and host and origin != "null" and urlsplit(origin).netloc != host:
        return AuthDecision(False, reason="cross-site request refused")
    if expected == "":
        return AuthDecision(True)
    auth = headers.get("Authorization") or headers.get("authorization") or ""
    if auth.lower().startswith("bearer ") and tokens_equal(auth[7:].strip(), expected):
        return AuthDecision(True)
    if tokens_equal(cookies.get(cookie_name(port)), expected):
        return AuthDecision(True)
    if "token" in query:
        if tokens_equal(query.get("token"), expected):
            return AuthDecision(True, from_query=True)
        return AuthDecision(False, reason="wrong token")
    return AuthDecision(False, reason="a token is required")
