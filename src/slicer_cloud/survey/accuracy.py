"""Measuring the classifier against topics labelled by hand: per-class precision and recall."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.survey.classify import LABELS, Classification


@dataclass(frozen=True)
class Labelled:
    topic_id: int
    label: str
    split: str  # "tune" or "heldout"
    reason: str


def read_devset(path: Path) -> list[Labelled]:
    """The labelled development set: CSV with topic_id,label,split,reason ('#' lines are comments)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    labelled = []
    for row in rows:
        if row["label"] not in LABELS:
            raise SlicerCloudError(f"Topic {row['topic_id']} has an unknown label {row['label']!r}.")
        labelled.append(Labelled(int(row["topic_id"]), row["label"], row["split"], row["reason"]))
    return labelled


@dataclass
class ClassScore:
    label: str
    support: int = 0  # topics labelled with this class
    predicted: int = 0
    correct: int = 0

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.support if self.support else None


@dataclass
class Accuracy:
    classes: dict[str, ClassScore]
    total: int = 0
    correct: int = 0
    confusion: dict[tuple[str, str], int] = field(default_factory=dict)  # (truth, predicted) -> count
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (topic id, truth, predicted)
    remote: ClassScore = field(default_factory=lambda: ClassScore("any remote approach"))

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def table(self) -> str:
        """A Markdown table of precision and recall per class."""
        lines = ["| class | labelled | predicted | precision | recall |", "|---|---|---|---|---|"]
        for score in [*self.classes.values(), self.remote]:
            lines.append(
                f"| {score.label} | {score.support} | {score.predicted} | {_pct(score.precision)} | {_pct(score.recall)} |"
            )
        lines.append(f"| **all {self.total} topics** (accuracy) | | | {_pct(self.accuracy)} | |")
        return "\n".join(lines)


def measure(pairs: Iterable[tuple[Labelled, Classification]]) -> Accuracy:
    result = Accuracy(classes={label: ClassScore(label) for label in LABELS})
    for truth, got in pairs:
        result.total += 1
        result.classes[truth.label].support += 1
        result.classes[got.approach].predicted += 1
        result.confusion[(truth.label, got.approach)] = result.confusion.get((truth.label, got.approach), 0) + 1
        truth_remote, got_remote = truth.label != "not_remote", got.approach != "not_remote"
        result.remote.support += truth_remote
        result.remote.predicted += got_remote
        result.remote.correct += truth_remote and got_remote
        if truth.label == got.approach:
            result.correct += 1
            result.classes[truth.label].correct += 1
        else:
            result.errors.append((truth.topic_id, truth.label, got.approach))
    return result


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"
