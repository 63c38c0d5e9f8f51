"""DICOMweb for the compute side: series in as volume files, label maps out as DICOM SEG.

* :func:`series_to_nrrd` retrieves a series and writes it as NRRD (through the project's DICOM
  reader and its checks), the form every compute module takes.
* :func:`expand_reference` turns what a user gives ``slicer-cloud run`` into series:
  ``dicomweb:SERVER/STUDY/SERIES`` (one), ``dicomweb:SERVER/STUDY`` (every image series of the
  study) or ``dicomweb:SERVER?Modality=CT&StudyInstanceUID=...`` (a QIDO-RS series query).
* :func:`export_labelmap` stores a label map that lies on a series' voxel grid as DICOM SEG.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np

from slicer_cloud.config import Limits
from slicer_cloud.dicomweb import connect
from slicer_cloud.dicomweb.reference import PREFIX, SeriesRef, check_uid, parse_reference
from slicer_cloud.dicomweb.settings import DicomwebSettings, load_settings
from slicer_cloud.errors import SlicerCloudError

#: modalities that are not images a module can process
NOT_IMAGES = {"SEG", "SR", "PR", "KO", "RTSTRUCT", "RTPLAN", "RTDOSE", "DOC", "OT"}
#: QIDO series query keys a batch may use (anything else is refused rather than ignored)
QUERY_KEYS = {"Modality", "StudyInstanceUID", "SeriesDescription", "StudyDate", "PatientID", "AccessionNumber",
              "SeriesNumber", "BodyPartExamined"}


def series_to_nrrd(ref: SeriesRef, folder: Path, limits: Limits | None = None, settings: DicomwebSettings | None = None) -> Path:
    """The series as ``folder/<server>-<series>.nrrd`` (kept: a second call reuses it)."""
    from slicer_cloud.compute.imageio import Volume, write_volume
    from slicer_cloud.dicomweb.retrieve import read_volume

    folder = Path(folder)
    target = folder / f"{ref.server}-{ref.series}.nrrd"
    if target.is_file():
        return target
    conn = connect(ref.server, settings)
    array, info, _remote = read_volume(conn, ref, limits)
    folder.mkdir(parents=True, exist_ok=True)
    write_volume(target, Volume(array, spacing=info.spacing, origin=info.origin, direction=np.array(info.direction)))
    return target


def expand_reference(text: str, settings: DicomwebSettings | None = None) -> list[SeriesRef]:
    """The series a ``dicomweb:`` input stands for (see the module docstring)."""
    from slicer_cloud.dicomweb.search import search_series

    settings = settings or load_settings()
    body = text[len(PREFIX):]
    if "?" in body:
        server, _, query = body.partition("?")
        filters = dict(parse_qsl(query, keep_blank_values=False))
        unknown = sorted(set(filters) - QUERY_KEYS)
        if unknown:
            raise SlicerCloudError(f"{text}: unknown query key(s) {', '.join(unknown)}; use {', '.join(sorted(QUERY_KEYS))}.")
        conn = connect(server.strip("/"), settings)
        with conn.errors("searching series"):
            found = conn.client.search_for_series(
                search_filters=filters, fields=["StudyInstanceUID", "Modality"], limit=settings.dicomweb_max_results
            )
            refs = [
                SeriesRef(server.strip("/"), str(item["0020000D"]["Value"][0]), str(item["0020000E"]["Value"][0]))
                for item in found
                if str(((item.get("00080060") or {}).get("Value") or [""])[0]) not in NOT_IMAGES
            ]
        return refs
    parts = body.strip("/").split("/")
    if len(parts) == 2:
        server, study = parts
        conn = connect(server, settings)
        return [SeriesRef(server, study, row["series"]) for row in search_series(conn, check_uid(study, "study"))
                if row["modality"] not in NOT_IMAGES]
    return [parse_reference(text)]


def export_labelmap(
    labels_path: Path, ref: SeriesRef, *, description: str = "", settings: DicomwebSettings | None = None,
    limits: Limits | None = None,
) -> SeriesRef:
    """Store the label map file ``labels_path`` (on ``ref``'s voxel grid) as DICOM SEG in ``ref``'s study.

    Each distinct non-zero value becomes one segment ("Label N"). Raises 409 when the label map
    is not on the series' grid (another size, spacing or position).
    """
    from slicer_cloud.compute.imageio import read_volume
    from slicer_cloud.dicomweb import seg as segmod
    from slicer_cloud.dicomweb.retrieve import describe

    volume = read_volume(Path(labels_path), limits)
    array = volume.array
    if array.ndim != 3:
        raise SlicerCloudError(f"{Path(labels_path).name} is not a single-component 3D label map.", status=422)
    if array.dtype.kind not in "iub" and not np.array_equal(array, np.rint(array)):
        raise SlicerCloudError(f"{Path(labels_path).name} holds fractional values; a label map holds whole numbers.", status=422)
    conn = connect(ref.server, settings)
    remote = describe(conn, ref, limits)
    info = remote.info()
    if array.shape != remote.shape:
        raise SlicerCloudError(
            f"{Path(labels_path).name} is {array.shape[::-1]} voxels but the series is {remote.shape[::-1]}: "
            "it is not on the series' grid.", status=409,
        )
    if not (np.allclose(volume.spacing, info.spacing, atol=1e-3) and np.allclose(volume.origin, info.origin, atol=1e-2)
            and np.allclose(np.asarray(volume.direction), np.asarray(info.direction), atol=1e-3)):
        raise SlicerCloudError(f"{Path(labels_path).name} does not sit where the series does (spacing, origin or axes differ).", status=409)
    values = [int(v) for v in np.unique(array) if v > 0]
    if not values:
        raise SlicerCloudError(f"{Path(labels_path).name} is empty: nothing to store.", status=422)
    if len(values) > segmod.MAX_SEGMENTS:
        raise SlicerCloudError(f"{Path(labels_path).name} has {len(values)} labels; a SEG written here holds at most {segmod.MAX_SEGMENTS}.", status=422)
    renumbered = np.zeros(array.shape, np.uint8)
    for number, value in enumerate(values, start=1):
        renumbered[array == value] = number
    segments = [segmod.Segment(n, f"Label {v}", _colour(v)) for n, v in enumerate(values, start=1)]
    seg = segmod.build_seg(renumbered, remote, segments, description=description or f"{Path(labels_path).name}"[:64])
    return segmod.store_seg(conn, seg, ref)


def _colour(value: int) -> tuple[float, float, float]:
    digest = hashlib.sha256(str(value).encode()).digest()
    return (0.3 + 0.7 * digest[0] / 255, 0.3 + 0.7 * digest[1] / 255, 0.3 + 0.7 * digest[2] / 255)



def import_series(reference: str, target: str, limits: dict | None = None) -> dict:
    """Worker task (runs in the compute API's inspection pool, never in the serving process):
    fetch the series, write it to ``target`` as NRRD, return what the item index records."""
    from slicer_cloud.compute.inspect import describe_file
    from slicer_cloud.core.nrrd_io import write_nrrd
    from slicer_cloud.dicomweb.retrieve import read_volume

    ref = parse_reference(reference)
    limit = Limits(**limits) if limits else Limits()
    array, info, remote = read_volume(connect(ref.server), ref, limit)
    write_nrrd(Path(target), array, info.spacing, info.origin, info.direction)
    meta = describe_file(target, "volume", True, limits)
    meta["series"] = remote.geometry.label
    return meta


def export_task(labels_path: str, reference: str, description: str, limits: dict | None = None) -> str:
    """Worker task: :func:`export_labelmap`, returning the SEG series' reference."""
    return str(export_labelmap(Path(labels_path), parse_reference(reference), description=description,
                               limits=Limits(**limits) if limits else Limits()))
