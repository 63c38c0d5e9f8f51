"""Reading Discourse topics: plain text, links, the archive format and its bad inputs."""

from __future__ import annotations

import gzip

import pytest

from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.survey.archive import ArchiveStats, read_archive
from slicer_cloud.survey.links import normalise_link
from slicer_cloud.survey.topics import Topic, extract_links, html_to_text
from tests.survey.forum import synthetic_topics, write_archive

COOKED = (
    '<aside class="quote no-group" data-username="ana"><div class="title">ana:</div>'
    "<blockquote><p>quoted VNC words</p></blockquote></aside>"
    "<p>Try <code>xvfb-run</code> &amp; see <a href=\"https://github.com/Slicer/SlicerDocker/blob/main/README.md\">this</a>, "
    '<a class="mention" href="/u/ana">@ana</a>, <a href="/t/some-topic/42/3">that topic</a> and '
    '<a name="p-1-a" class="anchor" href="#p-1-a"></a>'
    '<a class="lightbox" href="https://forum.example/uploads/default/original/1X/a.png">image</a></p>'
    '<aside class="onebox githubrepo"><header>preview text about jupyter</header></aside>'
)


def test_text_drops_quotes_and_previews_and_decodes_entities():
    text = html_to_text(COOKED)
    assert "xvfb-run & see" in text
    assert "quoted VNC words" not in text  # a quote counts where it was written, not again
    assert "jupyter" not in text  # link previews are not the poster's words


def test_links_are_resources_only_and_made_absolute():
    links = extract_links(COOKED, "https://forum.example")
    assert links == [
        "https://github.com/Slicer/SlicerDocker/blob/main/README.md",
        "https://forum.example/t/some-topic/42/3",
    ]


def test_links_are_normalised_per_resource():
    assert normalise_link("https://github.com/Slicer/SlicerDocker/blob/main/README.md") == "github.com/Slicer/SlicerDocker"
    assert normalise_link("https://forum.example/t/some-topic/42/3", "forum.example") == "forum.example/t/some-topic/42"
    assert normalise_link("https://slicer.readthedocs.io/en/latest/user_guide/get_help.html#x") == (
        "slicer.readthedocs.io/user_guide/get_help.html"
    )
    assert normalise_link("https://www.youtube.com/watch?v=abc-1&t=3") == "youtube.com/watch?v=abc-1"
    assert normalise_link("https://example.org/picture.png") is None
    assert normalise_link("https://forum.example/u/ana", "forum.example") is None


def test_topic_from_json_reads_posts_in_order_and_accepted_answers():
    raw = synthetic_topics()[0]
    raw = {**raw, "post_stream": {"posts": list(reversed(raw["post_stream"]["posts"]))}, "accepted_answer": {"post_number": 2}}
    parsed = Topic.from_json(raw)
    assert [post.number for post in parsed.posts] == [1, 2, 3]
    assert parsed.question.username == "ana" and len(parsed.answers) == 2
    assert parsed.accepted is True
    assert parsed.created.year == 2019
    assert parsed.url("https://forum.example/") == f"https://forum.example/t/{raw['slug']}/101"
    assert Topic.from_json({"id": 5, "title": "t"}).accepted is None  # the archive does not say


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "must be a JSON object"),
        ({"title": "no id"}, "no integer 'id'"),
        ({"id": 1, "title": 3}, "'title' is not text"),
        ({"id": 1, "title": "t", "post_stream": {"posts": "x"}}, "is not a list"),
        ({"id": 1, "title": "t", "post_stream": {"posts": [{"cooked": 5}]}}, "'cooked' HTML"),
    ],
)
def test_topic_from_json_rejects_other_shapes_clearly(raw, message):
    with pytest.raises(SlicerCloudError, match=message):
        Topic.from_json(raw)


def test_archive_reads_gzip_and_plain_and_notes_bad_lines(tmp_path):
    topics = synthetic_topics()
    for name in ("topics.jsonl.gz", "topics.jsonl"):
        stats = ArchiveStats()
        path = write_archive(tmp_path / name, topics, extra_lines=["{not json", '{"title": "no id"}', ""])
        read = list(read_archive(path, stats))
        assert [t.id for t in read] == [t["id"] for t in topics]
        assert stats.read == len(topics)
        assert len(stats.skipped) == 2 and stats.skipped[0].startswith(f"line {len(topics) + 1}: not JSON")


def test_archive_can_read_only_some_topics(tmp_path):
    path = write_archive(tmp_path / "topics.jsonl.gz", synthetic_topics())
    assert [t.id for t in read_archive(path, ids={103, 107})] == [103, 107]


def test_archive_errors_are_clear(tmp_path):
    with pytest.raises(SlicerCloudError, match="does not exist"):
        list(read_archive(tmp_path / "missing.jsonl.gz"))
    empty = write_archive(tmp_path / "bad.jsonl", [], extra_lines=["[1, 2]"])
    with pytest.raises(SlicerCloudError, match="holds no forum topics.*line 1"):
        list(read_archive(empty))
    whole = gzip.compress(b"".join((__import__("json").dumps(t) + "\n").encode() for t in synthetic_topics()))
    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SlicerCloudError, match="truncated or not a JSON-lines file"):
        list(read_archive(truncated))
