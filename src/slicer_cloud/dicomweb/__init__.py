"""DICOMweb: PACS servers as settings, QIDO-RS search, WADO-RS retrieval into the project's DICOM
reader and limits, and DICOM SEG out through STOW-RS (``highdicom``).

Every part of slicer-cloud names a remote series ``dicomweb:<server>/<study>/<series>``
(:mod:`slicer_cloud.dicomweb.reference`); only server-side code ever sees a server's URL or
credentials.
"""

from __future__ import annotations

from slicer_cloud.dicomweb.reference import PREFIX, SeriesRef, is_reference, parse_reference
from slicer_cloud.dicomweb.settings import DicomwebServer, DicomwebSettings, load_settings

__all__ = ["PREFIX", "SeriesRef", "is_reference", "parse_reference", "DicomwebServer", "DicomwebSettings",
           "load_settings", "connect"]


def connect(name: str, settings: DicomwebSettings | None = None):
    """A :class:`~slicer_cloud.dicomweb.connection.Connection` to the configured server ``name``."""
    from slicer_cloud.dicomweb.connection import Connection

    settings = settings or load_settings()
    return Connection(settings.server(name), settings)
