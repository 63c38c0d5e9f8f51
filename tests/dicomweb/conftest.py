"""One real Orthanc with the DICOMweb plugin for the DICOMweb tests, and the sample stored in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dicomweb.orthanc import Orthanc, phantom_datasets, start_orthanc


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory) -> Orthanc:
    server = start_orthanc(Path(tmp_path_factory.mktemp("orthanc")))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dw_settings(orthanc):
    from slicer_cloud.dicomweb.settings import DicomwebSettings

    return DicomwebSettings(dicomweb_servers=[orthanc.server("orthanc")], dicomweb_timeout_s=30)


@pytest.fixture(scope="session")
def conn(dw_settings):
    from slicer_cloud.dicomweb.connection import Connection

    return Connection(dw_settings.server("orthanc"), dw_settings)


@pytest.fixture(scope="session")
def stored(conn):
    """The sample stored with STOW-RS: uncompressed, JPEG-LS lossless, RLE and JPEG 2000 lossless.

    Returns {"plain": (phantom, datasets), "jpegls": ..., "rle": ..., "j2k": ...}."""
    from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

    result = {}
    for key, syntax in (("plain", None), ("jpegls", JPEGLSLossless), ("rle", RLELossless), ("j2k", JPEG2000Lossless)):
        phantom, datasets = phantom_datasets(description=f"Phantom {key}", syntax=syntax)
        conn.client.store_instances(datasets)
        result[key] = (phantom, datasets)
    return result
