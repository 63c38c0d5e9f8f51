"""Reading a live Discourse forum politely, with a local cache so that a re-run fetches only what changed.

Requests go through :class:`DiscourseClient`: at most one every ``request_interval_s``, and a
``429 Too Many Requests`` (or a 5xx, or a network error) is retried after the server's
``Retry-After`` or an exponential back-off. :func:`sync_forum` then:

1. pages through ``/latest.json`` (topics by last activity) and records each topic's title, date,
   ``bumped_at`` and ``posts_count``; on a re-run it stops at the first page where nothing changed,
   since everything older is unchanged too;
2. runs the survey's searches (``/search.json``, at most 10 pages a query; a query that fills them
   is split into one query per year); on a re-run only for posts after the previous search;
3. fetches ``/t/{id}.json`` for the candidate topics (search hits and topics whose title carries a
   remote-use phrase) that are not cached yet or whose ``bumped_at``/``posts_count`` changed.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from slicer_cloud.config import SurveySettings
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store.atomic import atomic_output
from slicer_cloud.survey.classify import Classifier
from slicer_cloud.survey.topics import Topic, parse_time

log = logging.getLogger(__name__)

# Discourse answers at most 10 pages of 50 results to one search.
SEARCH_PAGE_LIMIT = 10
FIRST_FORUM_YEAR = 2017

# What the survey searches for: the phrases of its rules that are specific enough to search.
SEARCH_QUERIES = (
    "vnc", "novnc", "remote desktop", "rdp", "x2go", "nomachine", "teamviewer", "virtualgl", "x11 forwarding",
    "ssh -X", "headless", "xvfb", "docker", "singularity", "cluster", "hpc", "slurm", "aws", "cloud",
    "jupyter", "binder", "colab", "notebook", "web browser", "web application", "trame", "vtk.js", "webassembly",
    "remote server", "remotely",
)  # fmt: skip


class DiscourseClient:
    """GET JSON from one Discourse forum: rate-limited, retried, with clear errors."""

    def __init__(
        self,
        base_url: str,
        settings: SurveySettings | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SlicerCloudError(f"{base_url!r} is not a forum address (expected https://host).")
        self.base_url = base_url.rstrip("/")
        self.settings = settings or SurveySettings()
        self._sleep = sleep
        self._clock = clock
        self._last_request: float | None = None
        self.requests = 0  # sent, retries included
        self.retries = 0
        self._http = httpx.Client(
            timeout=self.settings.timeout_s,
            headers={"Accept": "application/json", "User-Agent": "slicer-cloud-survey (forum statistics; polite)"},
            follow_redirects=True,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DiscourseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        problem = ""
        for attempt in range(self.settings.max_retries + 1):
            if attempt:
                self.retries += 1
            self._wait_turn()
            try:
                response = self._http.get(url, params=params)
            except httpx.TransportError as error:
                problem = f"network error ({type(error).__name__})"
                if attempt < self.settings.max_retries:
                    self._back_off(self._backoff(attempt), problem)
                continue
            if response.status_code == 429 or response.status_code >= 500:
                problem = f"HTTP {response.status_code}"
                wait = _retry_after(response.headers.get("Retry-After"))
                if attempt < self.settings.max_retries or (wait or 0) > self.settings.max_retry_wait_s:
                    self._back_off(wait if wait is not None else self._backoff(attempt), problem)
                continue
            if response.status_code == 404:
                raise SlicerCloudError(f"The forum has no {path} (404).", status=404)
            if response.status_code >= 400:
                raise SlicerCloudError(
                    f"The forum refused {path} with HTTP {response.status_code}.", status=502, detail=response.text[:500]
                )
            try:
                data = response.json()
            except ValueError as error:
                raise SlicerCloudError(f"The forum answered {path} with something that is not JSON.", status=502) from error
            if not isinstance(data, dict):
                raise SlicerCloudError(f"The forum answered {path} with JSON that is not an object.", status=502)
            return data
        raise SlicerCloudError(
            f"The forum kept failing on {path} ({problem}) after {self.settings.max_retries} retries; try again later.",
            status=503,
        )

    def _wait_turn(self) -> None:
        now = self._clock()
        if self._last_request is not None:
            wait = self.settings.request_interval_s - (now - self._last_request)
            if wait > 0:
                self._sleep(wait)
        self._last_request = self._clock()
        self.requests += 1

    def _backoff(self, attempt: int) -> float:
        return min(self.settings.max_retry_wait_s, max(1.0, self.settings.request_interval_s) * 2**attempt)

    def _back_off(self, wait: float, problem: str) -> None:
        if wait > self.settings.max_retry_wait_s:
            raise SlicerCloudError(
                f"The forum asks to wait {wait:.0f} s ({problem}), longer than the survey's limit of "
                f"{self.settings.max_retry_wait_s:.0f} s (SLICER_CLOUD_SURVEY_MAX_RETRY_WAIT_S); try again later.",
                status=503,
            )
        log.info("forum answered %s; waiting %.1f s before retrying", problem, wait)
        self._sleep(wait)

    # --- the three endpoints the survey uses -------------------------------------------------
    def latest_page(self, page: int) -> tuple[list[dict[str, Any]], bool]:
        """One page of ``/latest.json``: its topic entries and whether more pages follow."""
        data = self.get("/latest.json", {"page": page, "order": "activity"})
        listing = data.get("topic_list") or {}
        topics = [entry for entry in listing.get("topics") or [] if isinstance(entry, dict) and "id" in entry]
        return topics, bool(listing.get("more_topics_url")) and bool(topics)

    def search_page(self, query: str, page: int) -> tuple[list[dict[str, Any]], bool]:
        data = self.get("/search.json", {"q": query, "page": page})
        topics = [entry for entry in data.get("topics") or [] if isinstance(entry, dict) and "id" in entry]
        known = {entry["id"] for entry in topics}
        for post in data.get("posts") or []:
            if isinstance(post, dict) and isinstance(post.get("topic_id"), int) and post["topic_id"] not in known:
                known.add(post["topic_id"])
                topics.append({"id": post["topic_id"]})
        more = bool((data.get("grouped_search_result") or {}).get("more_full_page_results"))
        return topics, more and bool(topics)

    def topic(self, topic_id: int) -> dict[str, Any]:
        return self.get(f"/t/{int(topic_id)}.json")


@dataclass
class ForumCache:
    """Fetched topics and what was known of each when it was fetched, in one folder per forum."""

    root: Path
    listing: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> title, slug, created_at, bumped_at, posts_count
    fetched: dict[str, list[Any]] = field(default_factory=dict)  # id -> [bumped_at, posts_count] of the cached body
    candidates: set[str] = field(default_factory=set)
    searched: dict[str, str] = field(default_factory=dict)  # query -> date of its last full run
    listed_all: bool = False  # the listing was once read to its last page (an interrupted first run was not)

    @classmethod
    def open(cls, cache_dir: Path, base_url: str) -> ForumCache:
        root = Path(cache_dir) / urlsplit(base_url).netloc.replace(":", "_")
        (root / "topics").mkdir(parents=True, exist_ok=True)
        cache = cls(root)
        index = root / "index.json"
        if index.exists():
            try:
                data = json.loads(index.read_text(encoding="utf-8"))
                cache.listing = data.get("listing", {})
                cache.fetched = data.get("fetched", {})
                cache.candidates = set(data.get("candidates", []))
                cache.searched = data.get("searched", {})
                cache.listed_all = bool(data.get("listed_all", False))
            except (OSError, ValueError, AttributeError) as error:
                log.warning("survey cache index %s unreadable (%s); starting afresh", index, error)
        return cache

    def save(self) -> None:
        data = {
            "listing": self.listing,
            "fetched": self.fetched,
            "candidates": sorted(self.candidates, key=int),
            "searched": self.searched,
            "listed_all": self.listed_all,
        }
        with atomic_output(self.root / "index.json") as tmp:
            tmp.write_text(json.dumps(data), encoding="utf-8")

    def remember(self, entry: dict[str, Any]) -> bool:
        """Record a listing entry; True when it is new or changed since the cached state."""
        key = str(entry["id"])
        old = self.listing.get(key, {})
        merged = {**old, **{k: entry[k] for k in ("title", "slug", "created_at", "bumped_at", "posts_count") if k in entry}}
        self.listing[key] = merged
        return _version(old) != _version(merged)

    def is_stale(self, key: str) -> bool:
        if key not in self.fetched or not (self.root / "topics" / f"{key}.json").exists():
            return True
        current = _version(self.listing.get(key, {}))
        return current != (None, None) and list(current) != list(self.fetched[key])

    def store_topic(self, key: str, body: dict[str, Any]) -> None:
        with atomic_output(self.root / "topics" / f"{key}.json") as tmp:
            tmp.write_text(json.dumps(body), encoding="utf-8")
        entry = self.listing.setdefault(key, {})
        for name in ("title", "slug", "created_at", "posts_count"):
            if name in body:
                entry.setdefault(name, body[name])
        if "bumped_at" in body:
            entry["bumped_at"] = body["bumped_at"]
        if "posts_count" in body:
            entry["posts_count"] = body["posts_count"]
        self.fetched[key] = list(_version(entry))

    def load_topic(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.root / "topics" / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None


def _version(entry: dict[str, Any]) -> tuple[Any, Any]:
    return entry.get("bumped_at"), entry.get("posts_count")


@dataclass
class SyncStats:
    latest_pages: int = 0
    search_pages: int = 0
    fetched: int = 0
    from_cache: int = 0
    failed: list[str] = field(default_factory=list)
    requests: int = 0
    retries: int = 0

    def summary(self) -> str:
        return (
            f"{self.requests} requests ({self.retries} retried): {self.latest_pages} listing pages, "
            f"{self.search_pages} search pages, {self.fetched} topics fetched, {self.from_cache} from the cache"
            + (f", {len(self.failed)} failed" if self.failed else "")
        )


def sync_forum(
    client: DiscourseClient,
    cache: ForumCache,
    *,
    queries: tuple[str, ...] = SEARCH_QUERIES,
    max_latest_pages: int | None = None,
    max_topic_fetches: int | None = None,
    classifier: Classifier | None = None,
    progress: Callable[[str], None] = lambda message: None,
    today: date | None = None,
) -> SyncStats:
    """Bring the cache up to date with the forum (see the module's docstring for the steps)."""
    stats = SyncStats()
    classifier = classifier or Classifier()
    today = today or datetime.now(timezone.utc).date()
    # Until the listing has once been read to its end, read it all; after that, only what changed.
    incremental = cache.listed_all
    page = 0
    while max_latest_pages is None or page < max_latest_pages:
        entries, more = client.latest_page(page)
        stats.latest_pages += 1
        changed = [entry for entry in entries if cache.remember(entry)]
        if page % 20 == 0:
            progress(f"listing page {page}: {len(cache.listing)} topics known")
        if not more:
            cache.listed_all = True
            break
        if incremental and not changed:
            break
        page += 1
        if page % 20 == 0:
            cache.save()  # an interrupted first run keeps what it read
    cache.save()

    for query in queries:
        since = cache.searched.get(query)
        windows = [f"{query} after:{_day_before(since)}"] if since else [query]
        while windows:
            term = windows.pop(0)
            filled = _search(client, cache, term, stats)
            if filled and " after:" not in term and " before:" not in term:
                windows += [f"{query} after:{year - 1}-12-31 before:{year + 1}-01-01" for year in range(FIRST_FORUM_YEAR, today.year + 1)]
        cache.searched[query] = today.isoformat()
        cache.save()
        progress(f"searched '{query}': {len(cache.candidates)} candidate topics")
    for key, entry in cache.listing.items():
        if classifier.title_signal(str(entry.get("title") or "")):
            cache.candidates.add(key)
    cache.save()

    stale = [key for key in sorted(cache.candidates, key=int, reverse=True) if cache.is_stale(key)]
    stats.from_cache = len(cache.candidates) - len(stale)
    if max_topic_fetches is not None:
        stale = stale[:max_topic_fetches]
    for number, key in enumerate(stale, start=1):
        try:
            cache.store_topic(key, client.topic(int(key)))
            stats.fetched += 1
        except SlicerCloudError as error:
            if error.status != 404:
                cache.save()
                raise
            stats.failed.append(f"topic {key}: {error.message}")  # deleted or private since it was listed
        if number % 50 == 0:
            progress(f"fetched {number} of {len(stale)} topics")
            cache.save()
    cache.save()
    stats.requests, stats.retries = client.requests, client.retries
    return stats


def _search(client: DiscourseClient, cache: ForumCache, term: str, stats: SyncStats) -> bool:
    """Run one search over all its pages; True when it filled every page Discourse allows."""
    for page in range(1, SEARCH_PAGE_LIMIT + 1):
        entries, more = client.search_page(term, page)
        stats.search_pages += 1
        for entry in entries:
            cache.remember(entry)
            cache.candidates.add(str(entry["id"]))
        if not more:
            return False
    return True


def _day_before(day: str) -> str:
    try:
        return (date.fromisoformat(day) - timedelta(days=1)).isoformat()
    except ValueError:
        return day


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def cached_topics(cache: ForumCache) -> Iterator[Topic]:
    """Every topic the cache knows: full ones where fetched, title-only ones for the rest (so a
    year's total, the share's denominator, counts every listed topic)."""
    for key, entry in sorted(cache.listing.items(), key=lambda item: int(item[0])):
        body = cache.load_topic(key) if key in cache.fetched else None
        if body is not None:
            try:
                yield Topic.from_json(body)
                continue
            except SlicerCloudError as error:
                log.warning("cached topic %s unreadable: %s", key, error.message)
        yield Topic(
            id=int(key),
            title=str(entry.get("title") or ""),
            slug=str(entry.get("slug") or ""),
            created=parse_time(entry.get("created_at")),
            posts_count=int(entry.get("posts_count") or 0),
        )
