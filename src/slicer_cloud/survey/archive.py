"""Reading an archive of forum topics: one ``/t/{id}.json`` object per line, optionally gzipped."""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.survey.topics import Topic

log = logging.getLogger(__name__)


@dataclass
class ArchiveStats:
    read: int = 0
    skipped: list[str] = field(default_factory=list)  # 'line N: reason', for the report


_LEADING_ID = re.compile(r'^\s*\{\s*"id"\s*:\s*(\d+)')


def read_archive(path: Path, stats: ArchiveStats | None = None, *, ids: Collection[int] | None = None) -> Iterator[Topic]:
    """Yield the topics of a JSON-lines archive (``.jsonl`` or ``.jsonl.gz``).

    A line that is not a topic is skipped and noted in ``stats`` (one bad line should not cost a
    survey of thousands); a file that is missing, not gzip/JSON at all, or holds no topic is an error.
    ``ids``: only these topics (lines that start with another id are not even parsed).
    """
    path = Path(path)
    stats = stats if stats is not None else ArchiveStats()
    if not path.is_file():
        raise SlicerCloudError(f"The archive {path} does not exist or is not a file.", status=404)
    opener = gzip.open if _is_gzip(path) else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                if ids is not None:
                    leading = _LEADING_ID.match(line)
                    if leading and int(leading.group(1)) not in ids:
                        continue
                try:
                    topic = Topic.from_json(json.loads(line))
                except json.JSONDecodeError as error:
                    stats.skipped.append(f"line {number}: not JSON ({error.msg})")
                    continue
                except SlicerCloudError as error:
                    stats.skipped.append(f"line {number}: {error.message}")
                    continue
                stats.read += 1
                yield topic
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise SlicerCloudError(
            f"The archive {path.name} could not be read after {stats.read} topics: it is truncated or not "
            "a JSON-lines file (gzip allowed).",
            detail=repr(error),
        ) from error
    if stats.read == 0:
        reason = f" (first problem: {stats.skipped[0]})" if stats.skipped else ""
        raise SlicerCloudError(f"The archive {path.name} holds no forum topics{reason}.")
    if stats.skipped:
        log.warning("%s: %d lines skipped, first: %s", path.name, len(stats.skipped), stats.skipped[0])


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"
