"""QIDO-RS searches, answered as plain rows a page or a notebook can show."""

from __future__ import annotations

import re
from datetime import date

from slicer_cloud.dicomweb.connection import Connection
from slicer_cloud.dicomweb.reference import check_uid
from slicer_cloud.errors import SlicerCloudError

_STUDY_FIELDS = [
    "StudyInstanceUID", "PatientName", "PatientID", "StudyDate", "StudyDescription", "AccessionNumber",
    "ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
]
_SERIES_FIELDS = [
    "SeriesInstanceUID", "Modality", "SeriesDescription", "SeriesNumber", "NumberOfSeriesRelatedInstances",
]
_DATE = re.compile(r"^\d{4}-?\d{2}-?\d{2}$")


def _value(item: dict, keyword: str, default=""):
    from pydicom.datadict import tag_for_keyword

    tag = f"{tag_for_keyword(keyword):08X}"
    values = (item.get(tag) or {}).get("Value") or []
    if not values:
        return default
    first = values[0]
    if isinstance(first, dict):  # person names come as {"Alphabetic": "..."}
        return str(first.get("Alphabetic", ""))
    return values if len(values) > 1 else first


def _date(text: str, what: str) -> str:
    text = (text or "").strip()
    if not text:
        return ""
    if not _DATE.match(text):
        raise SlicerCloudError(f"The {what} date {text[:20]!r} is not a date (YYYY-MM-DD).")
    digits = text.replace("-", "")
    try:
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        raise SlicerCloudError(f"The {what} date {text!r} does not exist.") from None
    return digits


def _contains(text: str) -> str:
    """A QIDO wildcard match for text typed by a user: "*text*" unless they wrote their own "*"."""
    text = " ".join((text or "").replace("\\", "").split())
    if not text:
        return ""
    # A space becomes "?" (any one character): servers disagree on how a space in a query is
    # decoded (Orthanc 1.10 matches "%20" literally), and "?" matches a space everywhere, as
    # well as the "^" between the parts of a person name ("Phantom CT" finds "Phantom^CT").
    text = text.replace(" ", "?").replace("^", "?")
    return text if "*" in text else f"*{text}*"


def study_filters(
    *, patient: str = "", patient_id: str = "", date_from: str = "", date_to: str = "",
    modality: str = "", accession: str = "", description: str = "",
) -> dict[str, str]:
    """QIDO-RS query parameters for a study search form; empty fields are left out."""
    filters: dict[str, str] = {}
    if patient.strip():
        filters["PatientName"] = _contains(patient)
    if patient_id.strip():
        filters["PatientID"] = patient_id.strip()
    start, end = _date(date_from, "first"), _date(date_to, "last")
    if start or end:
        filters["StudyDate"] = f"{start}-{end}"
    if modality.strip():
        filters["ModalitiesInStudy"] = modality.strip().upper()
    if accession.strip():
        filters["AccessionNumber"] = accession.strip()
    if description.strip():
        filters["StudyDescription"] = _contains(description)
    return filters


def search_studies(conn: Connection, *, limit: int | None = None, **form: str) -> list[dict]:
    """Studies matching a search form (see :func:`study_filters`), newest first."""
    limit = min(limit or conn.settings.dicomweb_max_results, conn.settings.dicomweb_max_results)
    filters = study_filters(**form)
    with conn.errors("searching studies"):
        found = conn.client.search_for_studies(search_filters=filters or None, fields=_STUDY_FIELDS, limit=limit)
        rows = [
            {
                "server": conn.server.name,
                "study": str(_value(item, "StudyInstanceUID")),
                "patient_name": str(_value(item, "PatientName")).replace("^", " ").strip(),
                "patient_id": str(_value(item, "PatientID")),
                "date": _pretty_date(str(_value(item, "StudyDate"))),
                "description": str(_value(item, "StudyDescription")),
                "accession": str(_value(item, "AccessionNumber")),
                "modalities": _joined(_value(item, "ModalitiesInStudy")),
                "series_count": int(_value(item, "NumberOfStudyRelatedSeries", 0) or 0),
                "instance_count": int(_value(item, "NumberOfStudyRelatedInstances", 0) or 0),
            }
            for item in found[:limit]
        ]
    rows = [r for r in rows if r["study"]]
    rows.sort(key=lambda r: r["date"], reverse=True)
    return rows


def search_series(conn: Connection, study: str) -> list[dict]:
    """The series of one study, by series number."""
    check_uid(study, "study")
    with conn.errors("listing the series of a study"):
        found = conn.client.search_for_series(
            study_instance_uid=study, fields=_SERIES_FIELDS, limit=conn.settings.dicomweb_max_results
        )
        rows = [
            {
                "server": conn.server.name,
                "study": study,
                "series": str(_value(item, "SeriesInstanceUID")),
                "modality": str(_value(item, "Modality")),
                "description": str(_value(item, "SeriesDescription")),
                "number": int(_value(item, "SeriesNumber", 0) or 0),
                "instances": int(_value(item, "NumberOfSeriesRelatedInstances", 0) or 0),
            }
            for item in found
        ]
    rows = [r for r in rows if r["series"]]
    rows.sort(key=lambda r: (r["number"], r["description"]))
    return rows


def _joined(value) -> str:
    return "/".join(str(v) for v in value) if isinstance(value, list) else str(value or "")


def _pretty_date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else value
