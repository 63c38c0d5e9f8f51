"""``dicomweb:<server>/<study>/<series>``: how every part of slicer-cloud names a remote series."""

from __future__ import annotations

import re
from dataclasses import dataclass

from slicer_cloud.errors import SlicerCloudError

PREFIX = "dicomweb:"
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


@dataclass(frozen=True)
class SeriesRef:
    """One series on one configured DICOMweb server."""

    server: str
    study: str
    series: str

    def __str__(self) -> str:
        return f"{PREFIX}{self.server}/{self.study}/{self.series}"


def is_reference(value: object) -> bool:
    """True for a ``dicomweb:`` string (or a :class:`SeriesRef`)."""
    return isinstance(value, SeriesRef) or (isinstance(value, str) and value.startswith(PREFIX))


def check_uid(value: str, what: str) -> str:
    if not (0 < len(value) <= 64 and _UID.match(value)):
        raise SlicerCloudError(f"{value[:80]!r} is not a DICOM {what} UID (digits and dots, at most 64).")
    return value


def parse_reference(value: str | SeriesRef) -> SeriesRef:
    """Parse ``dicomweb:SERVER/STUDY_UID/SERIES_UID``; a clear 400 for anything else."""
    if isinstance(value, SeriesRef):
        return value
    if not is_reference(value):
        raise SlicerCloudError(f"{str(value)[:80]!r} is not a DICOMweb reference (dicomweb:SERVER/STUDY/SERIES).")
    parts = value[len(PREFIX):].strip("/").split("/")
    if len(parts) != 3 or not all(parts):
        raise SlicerCloudError(
            f"{value[:200]!r} is not a DICOMweb series reference: write dicomweb:SERVER/STUDY_UID/SERIES_UID."
        )
    server, study, series = parts
    return SeriesRef(server=server, study=check_uid(study, "study"), series=check_uid(series, "series"))
