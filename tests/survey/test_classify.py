"""The classifier on synthetic topics: each approach, look-alikes, and what its explanations say."""

from __future__ import annotations

import pytest

from slicer_cloud.survey.classify import APPROACHES, Classifier
from slicer_cloud.survey.topics import Topic
from tests.survey.forum import post, synthetic_topics, topic

EXPECTED = {
    101: "remote_desktop",
    102: "headless_compute_node",
    103: "jupyter_kernel",
    104: "pure_web",
    105: "not_remote",  # ITK remote module
    106: "not_remote",  # PLUS server, OpenIGTLink server
    107: "not_remote",
    108: "not_remote",  # a meeting notice naming web technologies
    109: "remote_desktop",
    110: "not_remote",  # point cloud
}


@pytest.fixture(scope="module")
def results():
    classifier = Classifier()
    return {raw["id"]: classifier.classify(Topic.from_json(raw)) for raw in synthetic_topics()}


@pytest.mark.parametrize(("topic_id", "approach"), sorted(EXPECTED.items()))
def test_each_synthetic_topic_gets_its_approach(results, topic_id, approach):
    assert results[topic_id].approach == approach, results[topic_id].explain()


def test_evidence_names_the_phrases_links_and_places_that_decided(results):
    vnc = results[101]
    text = vnc.explain()
    assert "title: 'VNC' (VNC, remote_desktop" in text
    assert "answers: 'VirtualGL' (VirtualGL" in text
    assert "link: 'virtualgl.org/Documentation'" in text
    assert all(e.approach == "remote_desktop" for e in vnc.evidence if e.where == "link")
    jupyter = results[103]
    assert "link: 'mybinder.org/v2/gh/Slicer/SlicerNotebooks/master'" in jupyter.explain(limit=20)
    assert len(jupyter.explain(limit=2).split("; ")) == 2  # strongest reasons first, as many as asked
    # The title weighs more than the question, the question more than one answer.
    points = {(e.rule, e.where): e.points for e in vnc.evidence}
    assert points[("VNC", "title")] == 6.0 and points[("VNC", "question")] == 3.0
    assert points[("VirtualGL", "answers")] == pytest.approx(1.05)


def test_lookalikes_are_set_aside_and_said_so(results):
    assert "ignored look-alikes: " in results[105].explain()
    assert any("remote module" in phrase.lower() for phrase in results[105].ignored)
    assert any("plus server" in phrase.lower() for phrase in results[106].ignored)
    assert any("point cloud" in phrase.lower() for phrase in results[110].ignored)
    assert results[108].ignored[0].startswith("notice:")  # its vtk.js and OHIF count for little
    assert results[107].explain() == "no remote-use phrase or link"


def test_confidence_is_high_for_clear_topics_and_lower_when_approaches_compete():
    classifier = Classifier()
    clear = classifier.classify(Topic.from_json(synthetic_topics()[0]))
    mixed = classifier.classify(Topic.from_json(topic(1, "Docker image with noVNC and Jupyter", [
        post(1, "x", "<p>Our Docker image runs Slicer with noVNC, and also a Jupyter kernel.</p>"),
    ])))
    assert mixed.approach in APPROACHES
    assert 0 < mixed.confidence < clear.confidence <= 0.99
    nothing = classifier.classify(Topic.from_json(synthetic_topics()[6]))
    assert nothing.confidence == 1.0 and not nothing.candidate


def test_a_passing_mention_in_an_answer_does_not_make_a_topic_remote():
    classifier = Classifier()
    result = classifier.classify(Topic.from_json(topic(2, "Segment statistics are wrong", [
        post(1, "x", "<p>The volume of my segment is twice what I expect.</p>"),
        post(2, "y", "<p>Check the spacing. (Unrelated: I run Slicer over VNC at work.)</p>"),
    ])))
    assert result.approach == "not_remote"
    assert result.candidate  # but it is in the first net, like the hand survey's 170


def test_title_signal_picks_topics_worth_fetching():
    classifier = Classifier()
    assert classifier.title_signal("Running Slicer in Docker on AWS")
    assert classifier.title_signal("Slicer kernel in JupyterHub")
    assert not classifier.title_signal("ITK remote module missing")
    assert not classifier.title_signal("How do I smooth a segmentation?")


def test_the_askers_words_must_point_to_the_approach():
    classifier = Classifier()
    answers_only = classifier.classify(Topic.from_json(topic(3, "Which graphics card should I buy?", [
        post(1, "asker", "<p>Volume rendering is slow on my laptop. Which GPU helps?</p>"),
        post(2, "a", "<p>Or use a remote desktop to a workstation: VNC with VirtualGL, or NoMachine.</p>"),
        post(3, "b", "<p>TeamViewer and AnyDesk work too, and X2Go.</p>"),
        post(4, "c", "<p>RDP is fine on recent drivers; VNC as well.</p>"),
    ])))
    assert answers_only.scores["remote_desktop"] >= classifier.threshold
    assert answers_only.approach == "not_remote"
    assert answers_only.ignored[0].startswith("only answers speak of remote_desktop")
    follow_up = classifier.classify(Topic.from_json(topic(4, "Slicer window is blank", [
        post(1, "asker", "<p>The window stays white after the splash screen.</p>"),
        post(2, "a", "<p>Which graphics card do you have?</p>"),
        post(3, "asker", "<p>I only see it when I connect through Remote Desktop from home, and over VNC too.</p>"),
    ])))
    assert follow_up.approach == "remote_desktop"  # the asker's own follow-up counts as the question
    assert "question: 'Remote Desktop'" in follow_up.explain()
