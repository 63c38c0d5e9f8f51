"""The live path against a loopback server answering like Discourse's JSON API: pagination,
429 with Retry-After, the cache and a re-run that fetches only what changed."""

from __future__ import annotations

import pytest

from slicer_cloud.config import SurveySettings
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.survey.discourse import DiscourseClient, ForumCache, cached_topics, sync_forum
from slicer_cloud.survey.service import survey_forum

QUERIES = ("vnc", "docker", "jupyter", "web browser", "cluster", "trame", "remote")


def settings(**overrides) -> SurveySettings:
    values = {"request_interval_s": 0.05, "max_retries": 3, "max_retry_wait_s": 10.0, "timeout_s": 10.0, **overrides}
    return SurveySettings(**values)


def fetched_topics(fake, since: int = 0) -> list[int]:
    return sorted(int(path.split("/")[2].split(".")[0]) for _, path, _ in fake.requests[since:] if path.startswith("/t/"))


def test_first_run_pages_searches_fetches_and_honours_retry_after(fake_forum, tmp_path):
    fake, url = fake_forum
    fake.throttle["/latest.json"] = 1  # the first listing request is told to wait a second
    cache = ForumCache.open(tmp_path / "cache", url)
    with DiscourseClient(url, settings()) as client:
        stats = sync_forum(client, cache, queries=QUERIES)
    latest = [(t, q) for t, path, q in fake.requests if path == "/latest.json"]
    assert [q["page"] for _, q in latest] == ["0", "0", "1", "2"]  # retried, then every page (4 a page, 10 topics)
    assert latest[1][0] - latest[0][0] >= 1.0  # waited as Retry-After said
    assert stats.retries == 1 and stats.latest_pages == 3
    searched = [q["q"] for _, path, q in fake.requests if path == "/search.json"]
    assert searched.count("remote") == 2  # one result a page: the second page was read too
    assert len(cache.listing) == 10
    # Search hits and topics with remote-use words in their titles, not the others:
    assert fetched_topics(fake) == [101, 102, 103, 104, 105, 109]
    assert stats.fetched == 6 and stats.from_cache == 0
    full = {topic.id: topic for topic in cached_topics(cache)}
    assert len(full) == 10 and full[107].posts == [] and full[101].posts  # title-only where not fetched


def test_a_rerun_fetches_only_what_changed(fake_forum, tmp_path):
    fake, url = fake_forum
    with DiscourseClient(url, settings()) as client:
        sync_forum(client, ForumCache.open(tmp_path / "cache", url), queries=QUERIES)
    before = len(fake.requests)

    # Nothing changed: one listing page, searches only for newer posts, no topic fetched.
    with DiscourseClient(url, settings()) as client:
        stats = sync_forum(client, ForumCache.open(tmp_path / "cache", url), queries=QUERIES)
    again = fake.requests[before:]
    assert [q["page"] for _, path, q in again if path == "/latest.json"] == ["0"]
    assert all(" after:" in q["q"] for _, path, q in again if path == "/search.json")
    assert fetched_topics(fake, before) == [] and stats.from_cache == 6

    # A reply to topic 102: it is listed first again with more posts, and only it is fetched.
    changed = fake.topics[102]
    changed["post_stream"]["posts"].append({"post_number": 3, "username": "ben", "created_at": "2026-08-01T00:00:00Z",
                                            "cooked": "<p>xvfb-run works, thanks.</p>"})
    changed["posts_count"], changed["bumped_at"] = 3, "2026-08-01T00:00:00.000Z"
    before = len(fake.requests)
    with DiscourseClient(url, settings()) as client:
        stats = sync_forum(client, ForumCache.open(tmp_path / "cache", url), queries=QUERIES)
    assert fetched_topics(fake, before) == [102] and stats.fetched == 1
    cache = ForumCache.open(tmp_path / "cache", url)
    assert len(next(t for t in cached_topics(cache) if t.id == 102).posts) == 3


def test_an_interrupted_listing_is_finished_by_the_next_run(fake_forum, tmp_path):
    fake, url = fake_forum
    with DiscourseClient(url, settings()) as client:
        sync_forum(client, ForumCache.open(tmp_path / "cache", url), queries=(), max_latest_pages=1)
    cache = ForumCache.open(tmp_path / "cache", url)
    assert len(cache.listing) == 4 and not cache.listed_all
    before = len(fake.requests)
    with DiscourseClient(url, settings()) as client:
        sync_forum(client, cache, queries=())
    pages = [q["page"] for _, path, q in fake.requests[before:] if path == "/latest.json"]
    assert pages == ["0", "1", "2"]  # page 0 had not changed, but older pages had never been read
    assert len(cache.listing) == 10 and cache.listed_all


def test_retry_after_as_seconds_or_http_date():
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    from slicer_cloud.survey.discourse import _retry_after

    assert _retry_after("7") == 7.0
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=120), usegmt=True)
    assert 100 < _retry_after(later) <= 120
    assert _retry_after("soon") is None and _retry_after(None) is None


def test_the_survey_report_from_a_live_forum(fake_forum, tmp_path):
    fake, url = fake_forum
    fake.missing.add(104)  # listed, then deleted: noted, the survey goes on
    run = survey_forum(url, tmp_path / "out", cache_dir=tmp_path / "cache", settings=settings())
    approaches = {result.id: result.approach for result in run.survey.results}
    assert approaches[101] == "remote_desktop" and approaches[102] == "headless_compute_node"
    assert approaches[103] == "jupyter_kernel"
    assert approaches[104] == "pure_web"  # its body could not be fetched: classified on its title alone
    assert next(r for r in run.survey.results if r.id == 104).classification.explain().startswith("title: ")
    assert run.survey.skipped == ["topic 104: The forum has no /t/104.json (404)."]
    assert run.survey.total == 10
    assert (tmp_path / "out" / "report.html").read_text().count("<svg") >= 5
    assert f"{url}/t/" in (tmp_path / "out" / "topics.csv").read_text()


def test_a_forum_that_keeps_refusing_gives_a_clear_error(fake_forum, tmp_path):
    fake, url = fake_forum
    fake.always_429 = True  # Retry-After: 3600
    with DiscourseClient(url, settings()) as client, pytest.raises(SlicerCloudError, match="asks to wait 3600 s"):
        client.latest_page(0)
    fake.always_429 = False
    with DiscourseClient(url, settings()) as client, pytest.raises(SlicerCloudError, match="no /t/999.json"):
        client.topic(999)


def test_requests_are_spaced_by_the_interval(fake_forum):
    fake, url = fake_forum
    now = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(round(seconds, 3))
        now[0] += seconds

    client = DiscourseClient(url, settings(request_interval_s=0.5), sleep=sleep, clock=lambda: now[0])
    client.latest_page(0)
    now[0] += 0.2  # the caller spends 0.2 s between two requests
    client.latest_page(1)
    client.topic(101)
    assert waits == [0.3, 0.5]  # the first goes at once, then never two within 0.5 s
    assert client.requests == 3


def test_network_errors_are_retried_then_reported(tmp_path):
    # Nothing listens on this loopback port (bound, then closed): every attempt is refused.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    waits: list[float] = []
    client = DiscourseClient(f"http://127.0.0.1:{port}", settings(max_retries=2, request_interval_s=0), sleep=waits.append)
    with pytest.raises(SlicerCloudError, match="kept failing on /latest.json \\(network error"):
        client.latest_page(0)
    assert waits == [1.0, 2.0]  # exponential back-off between the three attempts, none after the last
    with pytest.raises(SlicerCloudError, match="not a forum address"):
        DiscourseClient("discourse.example.org")
