"""The classifier measured against topics labelled by hand (tests/survey/devset.csv).

The labels are ours (topic ids, a class, a reason in our words); the topics' text is read from the
forum archive, which is not part of this repository: it is looked for as
``shared/forum/slicer-discourse-topics.jsonl.gz`` in a folder above the repository (CI keeps
``../shared`` beside the clone), or at ``SLICER_CLOUD_FORUM_ARCHIVE``. Without it the accuracy is
not measured, and that is a failure, not a silent skip; ``SLICER_CLOUD_FORUM_ARCHIVE=skip`` skips
these tests explicitly on a machine known not to have it.

The "tune" split was used while writing the rules; the "heldout" split was labelled at the same
time, before the rules, and is only measured; the "archive" split was drawn among the topics the
classifier of the third round called remote (8 per approach) and measures the precision of the
survey's counts over the rest of the forum; the "unseen" split was drawn last, after the rules were
frozen, among the remote calls of the old and new rules and near misses, and is only measured. The floors below are set under what these splits measure
(docs/survey.md gives the figures), so a change that loses accuracy fails here.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from slicer_cloud.survey.accuracy import measure, read_devset
from slicer_cloud.survey.archive import read_archive
from slicer_cloud.survey.classify import APPROACHES, Classifier

DEVSET = Path(__file__).with_name("devset.csv")
ARCHIVE_NAME = Path("shared/forum/slicer-discourse-topics.jsonl.gz")


def find_archive() -> Path | None:
    override = os.environ.get("SLICER_CLOUD_FORUM_ARCHIVE")
    if override:
        return None if override == "skip" else Path(override)
    for folder in Path(__file__).resolve().parents[2].parents:
        if (folder / ARCHIVE_NAME).is_file():
            return folder / ARCHIVE_NAME
    return None


@pytest.fixture(scope="module")
def labelled_topics():
    archive = find_archive()
    if os.environ.get("SLICER_CLOUD_FORUM_ARCHIVE") == "skip":
        pytest.skip("SLICER_CLOUD_FORUM_ARCHIVE=skip: the classifier's accuracy is not measured on this machine")
    if archive is None or not archive.is_file():
        pytest.fail(
            f"The forum archive is missing, so the classifier's accuracy cannot be measured: expected {ARCHIVE_NAME} "
            "in a folder above the repository (CI: ../shared beside the clone) or a path in SLICER_CLOUD_FORUM_ARCHIVE "
            "(SLICER_CLOUD_FORUM_ARCHIVE=skip skips these tests explicitly)."
        )
    devset = read_devset(DEVSET)
    topics = {topic.id: topic for topic in read_archive(archive, ids={item.topic_id for item in devset})}
    missing = [item.topic_id for item in devset if item.topic_id not in topics]
    assert not missing, f"labelled topics not in the archive {archive}: {missing[:10]}"
    return devset, topics


def test_devset_is_large_varied_and_split():
    devset = read_devset(DEVSET)
    assert len(devset) >= 150
    assert len({item.topic_id for item in devset}) == len(devset)
    labels = Counter(item.label for item in devset)
    assert all(labels[approach] >= 10 for approach in APPROACHES), labels
    splits = Counter(item.split for item in devset)
    assert set(splits) == {"tune", "heldout", "archive", "unseen"} and splits["heldout"] >= 100 and splits["archive"] >= 20
    assert splits["unseen"] >= 40
    lookalikes = [item for item in devset if item.label == "not_remote" and "look-alike" in item.reason]
    assert len(lookalikes) >= 15  # "remote module", "server", "notebook", "point cloud", "web browser"...
    assert all(item.reason and len(item.reason) < 140 for item in devset)


def _measured(labelled_topics, split):
    devset, topics = labelled_topics
    classifier = Classifier()
    result = measure((item, classifier.classify(topics[item.topic_id])) for item in devset if item.split == split)
    print(f"\n{split} split:\n{result.table()}\nerrors (topic, truth, predicted): {result.errors}")
    return result


def test_heldout_precision_and_recall(labelled_topics):
    result = _measured(labelled_topics, "heldout")
    assert result.total >= 100
    assert result.accuracy >= 0.85
    assert result.remote.recall >= 0.85 and result.remote.precision >= 0.7
    for approach in APPROACHES:
        score = result.classes[approach]
        assert score.recall >= 0.55, (approach, score)
        assert score.precision >= 0.5, (approach, score)
    assert result.classes["not_remote"].precision >= 0.95


def test_precision_of_the_counts_over_the_whole_forum(labelled_topics):
    # Drawn among the remote calls that no other split holds: the least clear ones, so this is a
    # lower bound of the precision over the whole forum (docs/survey.md combines it with the rest).
    result = _measured(labelled_topics, "archive")
    assert result.total >= 20
    assert result.remote.precision >= 0.4  # of the topics called remote, how many are


def test_unseen_sample_of_the_whole_forum(labelled_topics):
    # Drawn after the last rules were frozen, at random among the topics the old or the new rules
    # call remote plus near misses, labelled blind: the precision of a remote call and the recall
    # among these topics on text no rule was written from (docs/survey.md: 57% and 84%).
    result = _measured(labelled_topics, "unseen")
    assert result.total >= 40
    assert result.remote.precision >= 0.5
    assert result.remote.recall >= 0.75
    assert result.classes["jupyter_kernel"].precision >= 0.6 and result.classes["jupyter_kernel"].recall >= 0.85


def test_tune_split_for_comparison(labelled_topics):
    result = _measured(labelled_topics, "tune")
    assert result.accuracy >= 0.8
    assert result.remote.recall >= 0.85
