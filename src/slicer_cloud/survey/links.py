"""Which resources answers point to: links normalised so that the same resource counts once."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_FORUM_TOPIC = re.compile(r"^/t/(?:([^/]+)/)?(\d+)")
_IMAGE = re.compile(r"\.(?:png|jpe?g|gif|svg|webp|mp4|mov)$", re.I)


def normalise_link(url: str, forum_host: str = "") -> str | None:
    """A stable name for what a link points to, or None for links that are not resources (images).

    GitHub links count per repository, documentation per page without the version, forum links
    per topic; query strings and fragments are dropped.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = parts.netloc.lower().removeprefix("www.")
    path = parts.path.rstrip("/")
    if not host or _IMAGE.search(path):
        return None
    if forum_host and host == forum_host.lower().removeprefix("www."):
        topic = _FORUM_TOPIC.match(path)
        if topic:
            return f"{host}/t/{topic.group(1) or 'topic'}/{topic.group(2)}"
        return None  # user pages, tags, categories
    if host == "github.com":
        segments = [segment for segment in path.split("/") if segment]
        return "github.com/" + "/".join(segments[:2]) if segments else None
    if host.endswith("readthedocs.io"):
        path = re.sub(r"^/en/(?:latest|stable|v?[\d.]+)", "", path)
    path = re.sub(r"/index\.html?$", "", path)
    if host in ("youtube.com", "m.youtube.com") and path == "/watch":
        video = re.search(r"(?:^|&)v=([\w-]+)", parts.query)
        return f"youtube.com/watch?v={video.group(1)}" if video else None
    return host + path
