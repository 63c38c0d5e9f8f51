"""From classified topics to the report's figures, on the synthetic forum."""

from __future__ import annotations

from slicer_cloud.survey.analysis import run_survey
from slicer_cloud.survey.topics import Topic
from tests.survey.forum import post, synthetic_topics, topic


def survey_of(raw_topics):
    return run_survey((Topic.from_json(raw) for raw in raw_topics), "https://forum.example")


def test_counts_years_problems_links_and_open_questions():
    undated = {**topic(200, "Slicer over VNC shows a black window", [post(1, "z", "<p>VNC black window</p>")]),
               "created_at": None}
    undated["post_stream"]["posts"][0]["created_at"] = None
    survey = survey_of([*synthetic_topics(), undated])
    assert survey.total == 11  # an undated topic counts, though in no year
    assert sum(survey.topics_per_year.values()) == 10
    assert survey.counts() == {"remote_desktop": 3, "headless_compute_node": 1, "jupyter_kernel": 1, "pure_web": 1}
    assert survey.per_year()[2019]["remote_desktop"] == 1 and survey.per_year()[2026]["remote_desktop"] == 1
    results = {r.id: r for r in survey.results}
    assert {"no_display", "cluster_jobs"} <= set(results[102].problems)
    assert "remote_connection" in results[101].problems and "opengl_gpu" in results[101].problems
    assert "kernel_start" in results[103].problems
    assert results[101].answer_links == ["virtualgl.org/Documentation"]
    assert survey.top_links("headless_compute_node") == [("github.com/Slicer/SlicerDocker", 1)]
    assert results[101].resolved and results[102].answered and not results[102].resolved
    assert [r.id for r in survey.unanswered()] == [109, 200]  # newest first, undated last
    assert [r.id for r in survey.unresolved()] == [104, 103, 102]
    assert results[105].problems == [] and results[105].answer_links == []  # not remote: not analysed


def test_accepted_answers_decide_resolution_where_the_forum_marks_them():
    raw = synthetic_topics()[1]
    survey = survey_of([{**raw, "accepted_answer": {"post_number": 2}}])
    assert survey.results[0].resolved


def test_the_hand_survey_net_over_the_same_years():
    survey = survey_of(synthetic_topics())
    # Up to 2020: 101 (2019), 105 (2020, "remote module") and 110 (2018, "point cloud"). The old
    # words (web, cloud, internet, remote) catch the two look-alikes; the classifier finds 101 without them.
    assert survey.hand_survey_today() == {"candidates": 2, "remote_in_net": 0, "remote_all": 1}
    assert survey.candidates() == sum(1 for r in survey.results if max(r.classification.scores.values()) > 0)
