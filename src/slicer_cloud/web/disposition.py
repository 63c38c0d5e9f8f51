"""The ``Content-Disposition`` header of every file a service sends (RFC 6266).

A file name may hold anything a file system allows: quotes, backslashes, CR and LF, non-ASCII
letters. Put raw into a header, a quote breaks it and a line break makes the server refuse to
send it (the connection drops). The name travels percent-encoded in ``filename*`` (UTF-8), with
a plain-ASCII ``filename`` fallback for old clients.
"""

from __future__ import annotations

import re
from urllib.parse import quote

_NOT_PLAIN = re.compile(r'[^\x20-\x7e]|["\\%;]')


def content_disposition(name: str, *, disposition: str = "attachment") -> str:
    """``attachment; filename="ascii_fallback"; filename*=UTF-8''percent-encoded``."""
    fallback = _NOT_PLAIN.sub("_", name).strip() or "download"
    encoded = quote(name, safe="")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


__all__ = ["content_disposition"]
