"""Topics and posts in the shape of Discourse's ``GET /t/{id}.json``, and their plain text.

Posts arrive as rendered ("cooked") HTML. The classifier reads plain text and links; quotes of
earlier posts and link previews (oneboxes) are dropped so a phrase counts where it was written,
not again wherever it is quoted.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import Any

from slicer_cloud.errors import SlicerCloudError

_QUOTE = re.compile(r'<aside class="(?:quote|onebox)[^"]*"[^>]*>.*?</aside>', re.S)
_LIGHTBOX_META = re.compile(r'<div class="meta">.*?</div>', re.S)
_BLOCK_END = re.compile(r"</(?:p|div|li|pre|h\d|blockquote|tr)>|<br\s*/?>", re.I)
_TAG = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_HREF = re.compile(r'<a\b([^>]*)>', re.I)
_HREF_VALUE = re.compile(r'href="([^"]+)"')
_CLASS_VALUE = re.compile(r'class="([^"]*)"')
# Links that are not resources: mentions, hashtags, headings' anchors, uploaded images.
_SKIP_LINK_CLASSES = {"mention", "hashtag", "anchor", "lightbox", "hashtag-cooked", "badge-category__wrapper"}


def html_to_text(cooked: str) -> str:
    """Plain text of a cooked post: quotes and previews dropped, entities decoded, one line per block."""
    text = _QUOTE.sub(" ", cooked)
    text = _LIGHTBOX_META.sub(" ", text)
    text = _BLOCK_END.sub("\n", text)
    text = _TAG.sub(" ", text)
    text = html_lib.unescape(text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def extract_links(cooked: str, base_url: str = "") -> list[str]:
    """The resources a post links to, in order, without mentions, anchors or its own images.
    Links inside quotes of other posts are not counted (they belong to the quoted post)."""
    links: list[str] = []
    for match in _HREF.finditer(_QUOTE.sub(" ", cooked)):
        attrs = match.group(1)
        href = _HREF_VALUE.search(attrs)
        if not href:
            continue
        classes = set((_CLASS_VALUE.search(attrs) or _EMPTY).group(1).split())
        if classes & _SKIP_LINK_CLASSES:
            continue
        url = html_lib.unescape(href.group(1)).strip()
        if url.startswith("#") or url.startswith("mailto:") or "/uploads/" in url:
            continue
        if url.startswith("//"):
            url = "https:" + url
        elif url.startswith("/"):
            url = base_url.rstrip("/") + url
        if url.startswith(("http://", "https://")):
            links.append(url)
    return links


class _Empty:
    def group(self, _n: int) -> str:
        return ""


_EMPTY = _Empty()


def parse_time(value: Any) -> datetime | None:
    """Discourse's ISO times ('2017-05-05T19:02:00.000Z'); None when missing or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@dataclass
class Post:
    number: int
    username: str
    created: datetime | None
    cooked: str

    @cached_property
    def text(self) -> str:
        return html_to_text(self.cooked)

    def links(self, base_url: str = "") -> list[str]:
        return extract_links(self.cooked, base_url)


@dataclass
class Topic:
    id: int
    title: str
    slug: str
    created: datetime | None
    posts_count: int
    posts: list[Post] = field(default_factory=list)
    accepted: bool | None = None  # an accepted answer (Discourse's solved plugin); None: not known

    @classmethod
    def from_json(cls, data: Any) -> Topic:
        """A topic from Discourse's ``/t/{id}.json`` shape; a clear error when it is not that shape."""
        if not isinstance(data, dict):
            raise SlicerCloudError("A topic must be a JSON object.")
        topic_id = data.get("id")
        if not isinstance(topic_id, int) or isinstance(topic_id, bool):
            raise SlicerCloudError("A topic has no integer 'id'.")
        title = data.get("title") or data.get("fancy_title") or ""
        if not isinstance(title, str):
            raise SlicerCloudError(f"Topic {topic_id}: 'title' is not text.")
        raw_posts = (data.get("post_stream") or {}).get("posts") or []
        if not isinstance(raw_posts, list):
            raise SlicerCloudError(f"Topic {topic_id}: 'post_stream.posts' is not a list.")
        posts = []
        for raw in raw_posts:
            if not isinstance(raw, dict) or not isinstance(raw.get("cooked", ""), str):
                raise SlicerCloudError(f"Topic {topic_id}: a post is not an object with 'cooked' HTML.")
            posts.append(
                Post(
                    number=int(raw.get("post_number") or len(posts) + 1),
                    username=str(raw.get("username") or ""),
                    created=parse_time(raw.get("created_at")),
                    cooked=raw.get("cooked") or "",
                )
            )
        posts.sort(key=lambda post: post.number)
        posts_count = data.get("posts_count")
        accepted: bool | None = None
        if "accepted_answer" in data or "has_accepted_answer" in data:
            accepted = bool(data.get("accepted_answer") or data.get("has_accepted_answer"))
        if any(isinstance(raw, dict) and raw.get("accepted_answer") is True for raw in raw_posts):
            accepted = True
        return cls(
            id=topic_id,
            title=html_lib.unescape(title),
            slug=str(data.get("slug") or ""),
            created=parse_time(data.get("created_at")) or (posts[0].created if posts else None),
            posts_count=posts_count if isinstance(posts_count, int) else len(posts),
            posts=posts,
            accepted=accepted,
        )

    @property
    def question(self) -> Post | None:
        return self.posts[0] if self.posts else None

    @property
    def answers(self) -> list[Post]:
        """Replies by anyone; the first post is the question."""
        return self.posts[1:]

    def url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/t/{self.slug or 'topic'}/{self.id}"
