"""``slicer-cloud survey``: read topics from an archive or a live forum, classify, write the report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from slicer_cloud.config import SurveySettings
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.survey.analysis import Survey, run_survey
from slicer_cloud.survey.archive import ArchiveStats, read_archive


@dataclass
class SurveyRun:
    survey: Survey
    files: dict[str, Path]
    elapsed_s: float
    sync_summary: str = ""


def default_docs_base() -> str | None:
    """The project's docs folder when run from a source checkout (links in the report point there)."""
    docs = Path(__file__).resolve().parents[3] / "docs"
    return docs.as_uri() if (docs / "survey.md").exists() else None


def survey_archive(
    archive: Path, out: Path, *, base_url: str | None = None, docs_base: str | None = None
) -> SurveyRun:
    """The survey of an archive file of topics (one ``/t/{id}.json`` object per line, gzip allowed)."""
    from slicer_cloud.survey.report import write_report

    settings = SurveySettings()
    start = time.monotonic()
    stats = ArchiveStats()
    survey = run_survey(read_archive(Path(archive), stats), base_url or settings.forum_url)
    survey.source = f"archive {Path(archive).name}"
    survey.skipped = stats.skipped
    elapsed = time.monotonic() - start
    files = write_report(survey, out, docs_base=docs_base or default_docs_base(), elapsed_s=elapsed)
    return SurveyRun(survey, files, time.monotonic() - start)


def survey_forum(
    forum_url: str,
    out: Path,
    *,
    cache_dir: Path | None = None,
    max_latest_pages: int | None = None,
    max_topic_fetches: int | None = None,
    docs_base: str | None = None,
    settings: SurveySettings | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> SurveyRun:
    """The survey of a live Discourse forum, through its JSON API and a local cache."""
    from slicer_cloud.survey.discourse import DiscourseClient, ForumCache, cached_topics, sync_forum
    from slicer_cloud.survey.report import write_report

    settings = settings or SurveySettings()
    start = time.monotonic()
    cache = ForumCache.open(cache_dir or settings.cache_dir, forum_url)
    with DiscourseClient(forum_url, settings) as client:
        stats = sync_forum(
            client, cache, max_latest_pages=max_latest_pages, max_topic_fetches=max_topic_fetches, progress=progress
        )
    if not cache.listing:
        raise SlicerCloudError(f"The forum at {forum_url} listed no topics.", status=502)
    survey = run_survey(cached_topics(cache), forum_url)
    survey.source = f"{forum_url} (live; {stats.summary()})"
    survey.skipped = stats.failed
    elapsed = time.monotonic() - start
    files = write_report(survey, out, docs_base=docs_base or default_docs_base(), elapsed_s=elapsed)
    return SurveyRun(survey, files, time.monotonic() - start, stats.summary())
