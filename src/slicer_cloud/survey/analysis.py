"""From classified topics to the survey's figures: counts per year and approach, problems, links,
and the questions still open."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit

from slicer_cloud.survey.classify import APPROACHES, Classification, Classifier
from slicer_cloud.survey.links import normalise_link
from slicer_cloud.survey.problems import problems_of
from slicer_cloud.survey.topics import Topic

# The asker saying it works now: the archive has no "solved" marks, so this stands in for them.
_RESOLVED = re.compile(
    r"\b(?:thanks?|thank you|works?|worked|working now|solved|fixed|resolved|success\w*|figured (?:it )?out|got it)\b", re.I
)
# The hand survey's first net (2020): topics with these words, kept up to its time.
HAND_SURVEY_WORDS = re.compile(r"\b(?:web|cloud|internet|remote\w*)\b", re.I)
HAND_SURVEY = {"year": 2020, "candidates": 170, "remote": 63}


@dataclass
class TopicResult:
    """What the report needs of one topic (its posts are not kept)."""

    id: int
    title: str
    url: str
    created: datetime | None
    classification: Classification
    problems: list[str] = field(default_factory=list)
    answer_links: list[str] = field(default_factory=list)  # normalised, once per topic
    answered: bool = False
    resolved: bool = False
    hand_survey_candidate: bool = False

    @property
    def approach(self) -> str:
        return self.classification.approach

    @property
    def year(self) -> int | None:
        return self.created.year if self.created else None


@dataclass
class Survey:
    base_url: str
    results: list[TopicResult] = field(default_factory=list)
    topics_per_year: Counter = field(default_factory=Counter)  # all topics, the share's denominator
    skipped: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def remote(self) -> list[TopicResult]:
        return [result for result in self.results if result.classification.is_remote]

    @property
    def total(self) -> int:
        return len(self.results)

    def per_year(self) -> dict[int, Counter]:
        table: dict[int, Counter] = {year: Counter() for year in sorted(self.topics_per_year)}
        for result in self.remote:
            if result.year is not None:
                table.setdefault(result.year, Counter())[result.approach] += 1
        return table

    def counts(self) -> Counter:
        return Counter(result.approach for result in self.remote)

    def candidates(self) -> int:
        return sum(1 for result in self.results if result.classification.candidate)

    def problem_table(self) -> dict[str, Counter]:
        """problem key -> approach -> topics."""
        table: dict[str, Counter] = defaultdict(Counter)
        for result in self.remote:
            for key in result.problems:
                table[key][result.approach] += 1
        return table

    def top_links(self, approach: str | None = None, limit: int = 15) -> list[tuple[str, int]]:
        counter: Counter = Counter()
        for result in self.remote:
            if approach is None or result.approach == approach:
                counter.update(result.answer_links)
        return counter.most_common(limit)

    def hand_survey_today(self) -> dict[str, int]:
        """The old method's net and today's classifier over the same years (up to 2020)."""
        until = HAND_SURVEY["year"]
        window = [result for result in self.results if result.year is not None and result.year <= until]
        net = [result for result in window if result.hand_survey_candidate]
        return {
            "candidates": len(net),
            "remote_in_net": sum(1 for result in net if result.classification.is_remote),
            "remote_all": sum(1 for result in window if result.classification.is_remote),
        }

    def unanswered(self) -> list[TopicResult]:
        return sorted((r for r in self.remote if not r.answered), key=_newest_first, reverse=True)

    def unresolved(self) -> list[TopicResult]:
        return sorted((r for r in self.remote if r.answered and not r.resolved), key=_newest_first, reverse=True)


_UNDATED = datetime.min.replace(tzinfo=timezone.utc)


def _newest_first(result: TopicResult) -> datetime:
    return result.created or _UNDATED  # undated topics last


def analyse_topic(topic: Topic, classification: Classification, base_url: str) -> TopicResult:
    result = TopicResult(
        id=topic.id,
        title=topic.title,
        url=topic.url(base_url),
        created=topic.created,
        classification=classification,
    )
    question = topic.question.text if topic.question else ""
    result.hand_survey_candidate = bool(HAND_SURVEY_WORDS.search(topic.title) or HAND_SURVEY_WORDS.search(question))
    if not classification.is_remote:
        return result
    result.problems = problems_of(f"{topic.title}\n{question}")
    asker = topic.question.username if topic.question else ""
    replies = [post for post in topic.answers if post.username != asker]
    result.answered = bool(replies)
    if topic.accepted is not None:
        result.resolved = topic.accepted
    else:
        later = [post for post in topic.answers if post.username == asker and replies and post.number > replies[0].number]
        result.resolved = any(_RESOLVED.search(post.text) for post in later)
    forum_host = urlsplit(base_url).netloc
    seen: dict[str, None] = {}
    for post in replies:
        for url in post.links(base_url):
            name = normalise_link(url, forum_host)
            if name and name not in seen and not name.endswith(f"/{topic.id}"):
                seen[name] = None
    result.answer_links = list(seen)
    return result


def run_survey(topics: Iterable[Topic], base_url: str, classifier: Classifier | None = None) -> Survey:
    """Classify and analyse every topic. Only what the report needs is kept, so memory stays small."""
    classifier = classifier or Classifier()
    survey = Survey(base_url=base_url)
    for topic in topics:
        if topic.created is not None:
            survey.topics_per_year[topic.created.year] += 1
        survey.results.append(analyse_topic(topic, classifier.classify(topic), base_url))
    return survey


__all__ = ["APPROACHES", "HAND_SURVEY", "Survey", "TopicResult", "analyse_topic", "run_survey"]
