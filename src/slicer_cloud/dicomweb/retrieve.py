"""WADO-RS retrieval of a series into a volume, checked like a file before anything is allocated.

:func:`describe` reads the series' metadata only and turns it into the project's own
:class:`~slicer_cloud.core.dicom.DicomSeries` (the same grouping, sorting, gap and size checks a
DICOM folder gets), with the frame-count cap and the voxel limit applied to what the metadata
declares. :func:`fetch_slices` then retrieves the instances in parallel, middle slice first (the
one the views show), decodes them with pydicom's handlers (pylibjpeg for JPEG, JPEG-LS,
JPEG 2000, RLE) or asks the server for uncompressed pixels when this installation cannot decode
what it stores, checks each slice against the declared size, and hands every slice to a callback
as it arrives. Enhanced (multi-frame) CT/MR instances are split into frames with their
per-frame positions.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slicer_cloud.config import Limits
from slicer_cloud.core import dicom
from slicer_cloud.core.images import ImageInfo, check_voxels
from slicer_cloud.dicomweb.connection import Connection
from slicer_cloud.dicomweb.reference import SeriesRef
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store.atomic import atomic_output

log = logging.getLogger("slicer_cloud.dicomweb")

AS_STORED = ("application/dicom", "*")
UNCOMPRESSED = ("application/dicom", "1.2.840.10008.1.2.1")  # explicit VR little endian
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
LABELMAP_SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"
_FRAME_SEP = "#"


@dataclass
class RemoteSeries:
    """A series' metadata turned into a volume's geometry, and where each slice comes from."""

    ref: SeriesRef
    geometry: dicom.DicomSeries
    #: per slice k: (SOP Instance UID, frame index within that instance)
    slices: list[tuple[str, int]]
    #: metadata of each instance, in slice order (first frame's order for multi-frame)
    sources: list = field(default_factory=list)
    modality: str = ""
    patient_name: str = ""
    #: per slice k: (slope, intercept)
    rescale: list[tuple[float, float]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.geometry.description or f"series {self.ref.series[-12:]}"

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.slices), self.geometry.rows, self.geometry.columns)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.geometry.scalar_type)

    def info(self) -> ImageInfo:
        base = self.geometry.info()
        return ImageInfo(
            path=Path(str(self.ref)), format="dicomweb", dimensions=base.dimensions, spacing=base.spacing,
            origin=base.origin, direction=base.direction, scalar_type=base.scalar_type,
        )

    def instance_uids(self) -> list[str]:
        seen: dict[str, None] = {}
        for sop, _frame in self.slices:
            seen.setdefault(sop, None)
        return list(seen)


def _no_bulk(*_args) -> bytes:
    return b""  # metadata only: pixel data is fetched on its own, never through a bulk data URI


def _datasets(metadata: list[dict]):
    from pydicom.dataset import Dataset

    result = []
    for item in metadata:
        ds = Dataset.from_json(item, bulk_data_uri_handler=_no_bulk)
        for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
            if keyword in ds:
                del ds[keyword]
        result.append(ds)
    return result


def _frames(ds) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def _per_frame(ds) -> list:
    """Flat per-frame datasets of an enhanced multi-frame instance (positions, spacing, rescale)."""
    from pydicom.dataset import Dataset

    frames = _frames(ds)
    shared = (ds.get("SharedFunctionalGroupsSequence") or [Dataset()])[0]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if len(per_frame) != frames:
        raise SlicerCloudError(
            f"The multi-frame instance declares {frames} frames but describes {len(per_frame)}; it cannot be placed in space."
        )

    def item(group, keyword):
        for source in (group, shared):
            seq = source.get(keyword)
            if seq:
                return seq[0]
        return Dataset()

    result = []
    for n, group in enumerate(per_frame):
        flat = Dataset()
        for keyword in ("SeriesInstanceUID", "SeriesDescription", "Modality", "Rows", "Columns", "SamplesPerPixel",
                        "BitsAllocated", "BitsStored", "PixelRepresentation", "PhotometricInterpretation"):
            if keyword in ds:
                setattr(flat, keyword, ds[keyword].value)
        position = item(group, "PlanePositionSequence").get("ImagePositionPatient")
        orientation = item(group, "PlaneOrientationSequence").get("ImageOrientationPatient")
        measures = item(group, "PixelMeasuresSequence")
        transform = item(group, "PixelValueTransformationSequence")
        if position is not None:
            flat.ImagePositionPatient = position
        if orientation is not None:
            flat.ImageOrientationPatient = orientation
        for keyword in ("PixelSpacing", "SliceThickness", "SpacingBetweenSlices"):
            if keyword in measures:
                setattr(flat, keyword, measures[keyword].value)
        for keyword in ("RescaleSlope", "RescaleIntercept"):
            if keyword in transform:
                setattr(flat, keyword, transform[keyword].value)
            elif keyword in ds:
                setattr(flat, keyword, ds[keyword].value)
        flat.InstanceNumber = n + 1
        result.append(flat)
    return result


def describe(conn: Connection, ref: SeriesRef, limits: Limits | None = None) -> RemoteSeries:
    """The series' geometry from its metadata; raises before any pixel is fetched if it cannot be a volume."""
    limits = limits or Limits()
    with conn.errors("reading the series' metadata"):
        metadata = conn.client.retrieve_series_metadata(ref.study, ref.series)
        if not isinstance(metadata, list):
            raise ValueError("metadata is not a list")
        datasets = _datasets(metadata)
    if not datasets:
        raise SlicerCloudError(f"The series {ref.series} on {ref.server!r} has no instances.", status=404)
    images = [ds for ds in datasets if int(ds.get("Rows", 0) or 0) > 0]
    if any(str(ds.get("SOPClassUID", "")) in (SEGMENTATION_STORAGE, LABELMAP_SEGMENTATION_STORAGE) for ds in datasets):
        raise SlicerCloudError("This series is a DICOM segmentation: open it over the series it segments.", status=409)
    if not images:
        raise SlicerCloudError(f"The series {ref.series} on {ref.server!r} holds no images.")
    total = sum(_frames(ds) for ds in images)
    cap = conn.settings.dicomweb_max_frames
    if total > cap:
        raise SlicerCloudError(
            f"The series has {total:,} frames, more than the {cap:,} one series may have (setting SLICER_CLOUD_DICOMWEB_MAX_FRAMES).",
            status=413,
        )
    named: list[tuple[str, object]] = []
    for ds in images:
        sop = str(ds.get("SOPInstanceUID", "") or "")
        if not sop:
            raise SlicerCloudError("An instance of the series has no SOP Instance UID.", status=502)
        if _frames(ds) > 1:
            named += [(f"{sop}{_FRAME_SEP}{n}", frame) for n, frame in enumerate(_per_frame(ds))]
        else:
            named.append((sop, ds))
    found = dicom.series_from_datasets(named)
    if not found:
        raise SlicerCloudError(f"The series {ref.series} on {ref.server!r} holds no image Slicer can open.")
    geometry = found[0]
    if len(found) > 1 or geometry.uid != ref.series:
        raise SlicerCloudError("The server's metadata mixes several series under one series UID.", status=502)
    check_voxels(geometry.description or "The series", geometry.rows * geometry.columns * len(geometry.files), limits)
    geometry.info()  # raises the series' problem (gaps, mixed sizes, colour...) before any download
    by_name = dict(named)
    slices: list[tuple[str, int]] = []
    rescale: list[tuple[float, float]] = []
    for path in geometry.files:
        sop, _, frame = path.name.partition(_FRAME_SEP)
        slices.append((sop, int(frame) if frame else 0))
        ds = by_name[path.name]
        rescale.append((_number(ds.get("RescaleSlope", 1), 1.0) or 1.0, _number(ds.get("RescaleIntercept", 0), 0.0)))
    by_sop = {str(ds.SOPInstanceUID): ds for ds in images}
    order = list(dict.fromkeys(sop for sop, _ in slices))
    first = images[0]
    return RemoteSeries(
        ref=ref, geometry=geometry, slices=slices, sources=[by_sop[s] for s in order],
        modality=str(first.get("Modality", "") or ""),
        patient_name=str(first.get("PatientName", "") or ""), rescale=rescale,
    )


def _number(value, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if np.isfinite(number) else default


def middle_out(count: int) -> list[int]:
    """0..count-1 starting at the middle slice (the one the views show first), then outwards."""
    middle = (count - 1) // 2
    order = [middle]
    for step in range(1, count):
        for k in (middle - step, middle + step):
            if 0 <= k < count:
                order.append(k)
    return order[:count]


class _NoDecoder(Exception):
    pass


def _decode(ds) -> np.ndarray:
    """All frames of a retrieved instance, shape (frames, rows, columns)."""
    try:
        pixels = ds.pixel_array
    except (NotImplementedError, RuntimeError) as error:
        # pydicom: NotImplementedError for a syntax without decoder, RuntimeError when the
        # decoder's plugin (pylibjpeg, GDCM) is missing; anything else is a broken image.
        text = str(error).lower()
        if isinstance(error, NotImplementedError) or any(w in text for w in ("plugin", "decoder", "handler", "dependenc")):
            raise _NoDecoder(str(error)) from None
        raise
    return pixels[None] if pixels.ndim == 2 else pixels


def retrieve_instance(conn: Connection, ref: SeriesRef, sop: str, *, uncompressed: bool = False):
    media = UNCOMPRESSED if uncompressed or conn.settings.dicomweb_uncompressed else AS_STORED
    with conn.errors("retrieving an image"):
        return conn.client.retrieve_instance(ref.study, ref.series, sop, media_types=(media,))


def _instance_pixels(conn: Connection, remote: RemoteSeries, sop: str) -> np.ndarray:
    ds = retrieve_instance(conn, remote.ref, sop)
    with conn.errors("decoding an image"):
        try:
            frames = _decode(ds)
        except _NoDecoder as error:
            log.info("no decoder for %s here (%s); asking %s for uncompressed pixels", _syntax(ds), error, conn.server.name)
            frames = _decode(retrieve_instance(conn, remote.ref, sop, uncompressed=True))
    rows, columns = remote.geometry.rows, remote.geometry.columns
    if frames.shape[1:] != (rows, columns):
        raise SlicerCloudError(
            f"An image of {remote.name} is {frames.shape[-1]}x{frames.shape[-2]} where the metadata said {columns}x{rows}.",
            status=502,
        )
    return frames


def _syntax(ds) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(getattr(meta, "TransferSyntaxUID", "?"))


def fetch_slices(
    conn: Connection,
    remote: RemoteSeries,
    volume: np.ndarray,
    *,
    on_slice: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Fill ``volume`` (shape :attr:`RemoteSeries.shape`) slice by slice, in parallel, middle first.

    ``on_slice(k)`` is called (from a worker thread) after slice k is in place. The first failure
    stops the rest and is raised.
    """
    if volume.shape != remote.shape:
        raise ValueError("volume shape does not match the series")
    slots: dict[str, list[tuple[int, int]]] = {}
    for k in middle_out(len(remote.slices)):
        sop, frame = remote.slices[k]
        slots.setdefault(sop, []).append((k, frame))
    stop = cancel or threading.Event()
    integer = volume.dtype.kind in "iu"
    info = np.iinfo(volume.dtype) if integer else None

    def work(sop: str) -> None:
        if stop.is_set():
            return
        frames = _instance_pixels(conn, remote, sop)
        for k, frame in slots[sop]:
            if frame >= frames.shape[0]:
                raise SlicerCloudError(f"An instance of {remote.name} has fewer frames than its metadata says.", status=502)
            slope, intercept = remote.rescale[k]
            values = frames[frame].astype(np.float64 if not integer else np.int64)
            if slope != 1 or intercept != 0:
                values = values * slope + intercept
            if integer:
                values = np.clip(np.rint(values), info.min, info.max)
            volume[k] = values
            if on_slice is not None:
                on_slice(k)

    with concurrent.futures.ThreadPoolExecutor(max_workers=conn.settings.dicomweb_workers, thread_name_prefix="wado") as pool:
        futures = [pool.submit(work, sop) for sop in slots]
        try:
            for future in concurrent.futures.as_completed(futures):
                future.result()
        except BaseException:
            stop.set()
            for future in futures:
                future.cancel()
            raise
    if cancel is not None and cancel.is_set():
        raise SlicerCloudError("Opening the series was cancelled.", status=409)


def read_volume(conn: Connection, ref: SeriesRef, limits: Limits | None = None) -> tuple[np.ndarray, ImageInfo, RemoteSeries]:
    """The whole series as an array (k, j, i), rescaled, with its geometry."""
    remote = describe(conn, ref, limits)
    volume = np.zeros(remote.shape, dtype=remote.dtype)
    fetch_slices(conn, remote, volume)
    return volume, remote.info(), remote


def download_series(conn: Connection, ref: SeriesRef, folder: Path, limits: Limits | None = None) -> Path:
    """The series as DICOM files in ``folder/<server>/<series UID>/`` (cached; appears complete or not at all).

    Afterwards every reader of DICOM folders (compute items, notebooks, the data folder) opens it.
    """
    remote = describe(conn, ref, limits)
    target = Path(folder) / ref.server / ref.series
    if (target / ".complete").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{ref.series}.{os.getpid()}.{threading.get_ident()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        def work(item: tuple[int, str]) -> None:
            n, sop = item
            ds = retrieve_instance(conn, ref, sop)
            if dicom._transfer_syntax_problem(_syntax(ds)):
                ds = retrieve_instance(conn, ref, sop, uncompressed=True)
            with atomic_output(staging / f"IM{n + 1:05d}.dcm") as tmp:
                ds.save_as(tmp, enforce_file_format=True)

        with concurrent.futures.ThreadPoolExecutor(max_workers=conn.settings.dicomweb_workers) as pool:
            list(pool.map(work, enumerate(remote.instance_uids())))
        (staging / ".complete").write_text(str(ref))
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target

