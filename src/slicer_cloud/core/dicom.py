"""DICOM folders: find the series in them (headers only) and read one into a numpy volume.

Classic single-frame images only, the way scanners and PACS export them. Everything a series
needs to be a volume (same size and orientation in every file, no gaps, a pixel encoding this
installation can decode) is checked from headers while the folder is scanned; a series that
fails carries the reason in :attr:`DicomSeries.problem`, which :func:`read_series` and
:meth:`DicomSeries.info` raise.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slicer_cloud.config import Limits
from slicer_cloud.core.images import ImageInfo, check_voxels, is_dicom_file
from slicer_cloud.errors import SlicerCloudError

log = logging.getLogger(__name__)

Vector3 = tuple[float, float, float]
Matrix3 = tuple[Vector3, Vector3, Vector3]

#: the header elements the scan reads (everything else, pixels included, is skipped).
_TAGS = [
    "SeriesInstanceUID", "SeriesDescription", "SeriesNumber", "Modality", "Rows", "Columns",
    "PixelSpacing", "ImagerPixelSpacing", "SliceThickness", "SpacingBetweenSlices",
    "ImagePositionPatient", "ImageOrientationPatient", "NumberOfFrames", "SamplesPerPixel",
    "BitsAllocated", "BitsStored", "PixelRepresentation", "RescaleSlope", "RescaleIntercept",
    "InstanceNumber", "PhotometricInterpretation", "BitsAllocated", "PixelData",
]
#: PixelData is listed so that its length is known; values longer than this are never read.
_DEFER_BYTES = 1024
_PIXEL_DATA = 0x7FE00010
_UNDEFINED_LENGTH = 0xFFFFFFFF
_ORIENTATION_TOLERANCE = 1e-3
_DUPLICATE_TOLERANCE_MM = 1e-3
_GAP_FACTOR = 1.5


@dataclass(frozen=True)
class DicomSeries:
    """One series of a DICOM folder, its files sorted along the slice normal."""

    uid: str
    description: str
    modality: str
    files: tuple[Path, ...]
    rows: int
    columns: int
    spacing: Vector3  # columns (i), rows (j), slices (k), millimetres
    origin: Vector3  # LPS: the first pixel of the first file
    direction: Matrix3  # LPS, columns = i, j, k axes
    #: the numpy type :func:`read_series` produces when the pixel values use the whole range the
    #: header allows (int16 when rescaled values are whole numbers that fit, else float32).
    scalar_type: str = "int16"
    #: why this series cannot be opened as a volume; None when it can.
    problem: str | None = None
    transfer_syntax: str = ""

    @property
    def label(self) -> str:
        """A short line a user can pick the series by."""
        text = self.description or "(no description)"
        return f"{text} [{self.modality or '?'}, {len(self.files)} files, {self.columns}x{self.rows}]"

    def info(self) -> ImageInfo:
        """The series as an image; raises the series' problem if it has one."""
        if self.problem:
            raise SlicerCloudError(self.problem)
        return ImageInfo(
            path=Path(os.path.commonpath([str(f.parent) for f in self.files])),
            format="dicom",
            dimensions=(self.columns, self.rows, len(self.files)),
            spacing=self.spacing,
            origin=self.origin,
            direction=self.direction,
            scalar_type=self.scalar_type,
        )


# --------------------------------------------------------------------------------------------
# scanning


@dataclass
class _Header:
    path: Path
    uid: str
    description: str
    modality: str
    rows: int
    columns: int
    pixel_spacing: tuple[float, float] | None
    slice_thickness: float | None
    position: np.ndarray | None
    orientation: np.ndarray | None
    frames: int
    samples: int
    bits_stored: int
    signed: bool
    slope: float
    intercept: float
    instance: int
    transfer_syntax: str
    bits_allocated: int = 16
    #: bytes of the PixelData element; None without one, -1 for undefined length (encapsulated)
    pixel_bytes: int | None = -1

    def pixel_shortfall(self) -> tuple[int, int] | None:
        """(declared, held) bytes when native pixel data is shorter than the header declares."""
        if self.pixel_bytes is None:
            return (self.declared_pixel_bytes(), 0)
        if self.pixel_bytes < 0:
            return None  # encapsulated (compressed) fragments: the decoder checks them
        declared = self.declared_pixel_bytes()
        return (declared, self.pixel_bytes) if self.pixel_bytes < declared else None

    def declared_pixel_bytes(self) -> int:
        bits = self.rows * self.columns * max(self.samples, 1) * max(self.frames, 1) * max(self.bits_allocated, 1)
        return (bits + 7) // 8


def _floats(value, count: int) -> np.ndarray | None:
    try:
        values = np.array([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        return None
    return values if len(values) == count and np.all(np.isfinite(values)) else None


def _number(value, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if np.isfinite(number) else default


def damaged(path: Path, what: str, exc: BaseException | None = None) -> SlicerCloudError:
    """The refusal of a DICOM file that is damaged (or made to attack readers); the exception
    goes to the log only."""
    if exc is not None:
        log.info("DICOM file %s: %s: %r", path, what, exc)
    return SlicerCloudError(f"{path.name} is a damaged DICOM file: {what}", detail=repr(exc) if exc else None)


def _read_header(path: Path) -> _Header | None:
    """The header of one file, or None for anything that is not a DICOM image.

    Raises for a file that claims to be DICOM but whose header cannot be read safely.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, specific_tags=_TAGS, defer_size=_DEFER_BYTES)
    except RecursionError as exc:
        # pydicom parses nested sequences recursively; a few hundred levels exhaust the stack.
        raise damaged(path, "its header nests data sequences hundreds of levels deep, which no scanner "
                      "writes, so it is not read.", exc) from None
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError, AttributeError):
        return None
    except Exception as exc:  # anything else pydicom raises on hostile bytes
        if is_dicom_file(path):
            raise damaged(path, "its header cannot be read.", exc) from None
        return None
    try:
        # pydicom converts values when they are first read: a value of the wrong length or
        # type raises here, not in dcmread
        return _header_from_dataset(ds, path, pixel_bytes=_pixel_data_length(ds))
    except RecursionError as exc:
        raise damaged(path, "its header nests data sequences hundreds of levels deep, which no scanner "
                      "writes, so it is not read.", exc) from None
    except Exception as exc:
        if is_dicom_file(path):
            raise damaged(path, "its header holds values of the wrong length or type.", exc) from None
        return None


def _pixel_data_length(ds) -> int | None:
    """Bytes of a file's PixelData element (never read: its length is in the header); None
    without one, -1 for undefined length (encapsulated fragments)."""
    try:
        element = ds.get_item(_PIXEL_DATA, keep_deferred=True)
    except (KeyError, ValueError, TypeError):
        element = None
    if element is None:
        return None
    length = getattr(element, "length", None)
    if length is None:  # read already (short values are not deferred)
        value = element.value
        length = len(value) if value is not None else 0
    return -1 if length == _UNDEFINED_LENGTH else int(length)


def _header_from_dataset(ds, path: Path, *, pixel_bytes: int | None = -1) -> _Header | None:
    """The header fields of a dataset (from a file, or a DICOMweb server's metadata), or None.

    ``pixel_bytes``: the length of the file's pixel data; -1 (metadata: no pixels yet) skips the check.
    """
    try:
        rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    except (TypeError, ValueError):
        return None
    if rows <= 0 or columns <= 0:
        return None  # reports, DICOMDIR, presentation states: no image
    spacing = _floats(ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing") or [], 2)
    orientation = _floats(ds.get("ImageOrientationPatient") or [], 6)
    if orientation is not None:
        row_dir, col_dir = orientation[:3], orientation[3:]
        if abs(np.linalg.norm(row_dir) - 1) > 0.01 or abs(np.linalg.norm(col_dir) - 1) > 0.01:
            orientation = None
    meta = getattr(ds, "file_meta", None)
    return _Header(
        path=path,
        uid=str(ds.get("SeriesInstanceUID", "") or ""),
        description=str(ds.get("SeriesDescription", "") or ""),
        modality=str(ds.get("Modality", "") or ""),
        rows=rows,
        columns=columns,
        pixel_spacing=(float(spacing[0]), float(spacing[1])) if spacing is not None else None,
        slice_thickness=_number(ds.get("SpacingBetweenSlices") or ds.get("SliceThickness"), 0.0) or None,
        position=_floats(ds.get("ImagePositionPatient") or [], 3),
        orientation=orientation,
        frames=int(_number(ds.get("NumberOfFrames", 1), 1.0)),
        samples=int(_number(ds.get("SamplesPerPixel", 1), 1.0)),
        bits_stored=int(_number(ds.get("BitsStored", 16), 16.0)),
        signed=int(_number(ds.get("PixelRepresentation", 0), 0.0)) == 1,
        slope=_number(ds.get("RescaleSlope", 1), 1.0) or 1.0,
        intercept=_number(ds.get("RescaleIntercept", 0), 0.0),
        instance=int(_number(ds.get("InstanceNumber", 0), 0.0)),
        transfer_syntax=str(getattr(meta, "TransferSyntaxUID", "") or "") if meta is not None else "",
        bits_allocated=int(_number(ds.get("BitsAllocated", 16), 16.0)),
        pixel_bytes=pixel_bytes,
    )


def _walk_files(folder: Path, limits: Limits) -> list[Path]:
    files: list[Path] = []
    for directory, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(directory) / name
            if path.is_symlink():
                continue  # a link could point anywhere; DICOM exports never need them
            files.append(path)
            if len(files) > limits.max_dicom_files:
                raise SlicerCloudError(
                    f"The folder {folder.name} holds more than {limits.max_dicom_files:,} files, the most one DICOM "
                    "folder may have (setting SLICER_CLOUD_MAX_DICOM_FILES). Pick a subfolder with one study.",
                    status=413,
                )
    return files


def find_series(folder: Path, limits: Limits | None = None) -> list[DicomSeries]:
    """Every DICOM image series under ``folder`` (non-DICOM files are ignored), largest first.

    Reads headers only. Raises 413 when the folder holds more than ``limits.max_dicom_files``.
    """
    limits = limits or Limits()
    folder = Path(folder)
    if not folder.is_dir():
        raise SlicerCloudError(f"{folder.name} is not a folder.", status=404 if not folder.exists() else 400)
    return _group(_walk_files(folder, limits))


def _group(files: Iterable[Path]) -> list[DicomSeries]:
    groups: dict[str, list[_Header]] = {}
    for path in files:
        header = _read_header(path)
        if header is not None:
            groups.setdefault(header.uid, []).append(header)
    series = [_make_series(uid, headers) for uid, headers in groups.items()]
    series.sort(key=lambda s: (-len(s.files), s.description, s.uid))
    return series


def series_from_datasets(datasets: Iterable[tuple[Path, object]]) -> list[DicomSeries]:
    """Series from datasets already in memory (DICOMweb metadata), grouped and checked exactly as
    files are; ``files`` then holds the names the caller gave each dataset (e.g. SOP Instance UIDs)."""
    groups: dict[str, list[_Header]] = {}
    for name, ds in datasets:
        header = _header_from_dataset(ds, Path(name))
        if header is not None:
            groups.setdefault(header.uid, []).append(header)
    series = [_make_series(uid, headers) for uid, headers in groups.items()]
    series.sort(key=lambda s: (-len(s.files), s.description, s.uid))
    return series


def _transfer_syntax_problem(uid: str) -> str | None:
    """Why pixel data in transfer syntax ``uid`` cannot be decoded here, or None."""
    if not uid:
        return None
    from pydicom.uid import UID

    syntax = UID(uid)
    name = syntax.name if syntax.is_transfer_syntax else uid
    try:
        from pydicom.pixels import get_decoder
    except ImportError:  # pydicom < 3: find out when decoding
        return None
    try:
        decoder = get_decoder(syntax)
    except (NotImplementedError, ValueError):
        return f"its pixels are stored as {name}, which slicer-cloud cannot decode."
    if not decoder.is_available:
        return (
            f"its pixels are compressed as {name}, which this installation cannot decode "
            "(it needs pylibjpeg or GDCM); convert the series to uncompressed DICOM first."
        )
    return None


def _is_compressed(uid: str) -> bool:
    if not uid:
        return False
    from pydicom.uid import UID

    syntax = UID(uid)
    return syntax.is_transfer_syntax and syntax.is_compressed


def _make_series(uid: str, headers: list[_Header]) -> DicomSeries:
    first = headers[0]
    description = first.description
    # named with its folder too: a refusal says which files it is about
    folder = Path(os.path.commonpath([str(h.path.parent) for h in headers])).name  # none for DICOMweb metadata
    label = (f"The DICOM series {description!r}" if description else "The DICOM series") + (f" in {folder}" if folder else "")

    def finish(sorted_headers: list[_Header], problem: str | None, spacing_k: float, normal: np.ndarray) -> DicomSeries:
        head = sorted_headers[0]
        row_spacing, column_spacing = head.pixel_spacing or (1.0, 1.0)
        if head.orientation is not None:
            i_axis, j_axis = head.orientation[:3], head.orientation[3:]
        else:
            i_axis, j_axis = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
        origin = head.position if head.position is not None else np.zeros(3)
        direction = tuple(tuple(float(x) for x in row) for row in np.column_stack([i_axis, j_axis, normal]))
        return DicomSeries(
            uid=uid,
            description=description,
            modality=first.modality,
            files=tuple(h.path for h in sorted_headers),
            rows=head.rows,
            columns=head.columns,
            spacing=(float(column_spacing), float(row_spacing), float(spacing_k)),
            origin=(float(origin[0]), float(origin[1]), float(origin[2])),
            direction=direction,  # type: ignore[arg-type]
            scalar_type=_scalar_type(headers),
            problem=problem,
            transfer_syntax=first.transfer_syntax,
        )

    default_normal = np.array([0.0, 0.0, 1.0])
    if first.orientation is not None:
        default_normal = np.cross(first.orientation[:3], first.orientation[3:])
    by_instance = sorted(headers, key=lambda h: (h.instance, str(h.path)))
    thickness = first.slice_thickness or 1.0

    # Problems that make the series unreadable whatever its geometry.
    if any(h.frames > 1 for h in headers):
        return finish(by_instance, f"{label} is a multi-frame (enhanced) DICOM object, which slicer-cloud does not "
                      "read yet; export it as classic single-frame images.", thickness, default_normal)
    if any(h.samples != 1 for h in headers):
        return finish(by_instance, f"{label} holds colour images; slicer-cloud reads greyscale DICOM volumes.",
                      thickness, default_normal)
    syntaxes = {h.transfer_syntax for h in headers}
    for syntax in sorted(syntaxes):
        reason = _transfer_syntax_problem(syntax)
        if reason:
            return finish(by_instance, f"{label} cannot be opened: {reason}", thickness, default_normal)
    for h in by_instance:
        shortfall = h.pixel_shortfall()
        if shortfall is not None and not _is_compressed(h.transfer_syntax):
            declared, held = shortfall
            what = ("holds no pixel data" if h.pixel_bytes is None else f"is truncated: its header declares "
                    f"{h.columns}x{h.rows} pixels of {h.bits_allocated} bits ({declared:,} bytes) but the file holds "
                    f"only {held:,} bytes of pixel data")
            return finish(by_instance, f"{label} cannot be opened: {h.path.name} {what}. It was probably cut short "
                          "while copying; nothing of it is shown.", thickness, default_normal)
    if len({(h.rows, h.columns) for h in headers}) > 1:
        sizes = sorted({f"{h.columns}x{h.rows}" for h in headers})
        return finish(by_instance, f"{label} mixes images of different sizes ({', '.join(sizes)}), so it is not "
                      "one volume.", thickness, default_normal)
    if len(headers) == 1:
        return finish(headers, None, thickness, default_normal)

    # Geometry: every file must have the same orientation and a position.
    if any(h.orientation is None or h.position is None for h in headers):
        return finish(by_instance, f"{label} has files without ImagePositionPatient/ImageOrientationPatient, so its "
                      "slices cannot be placed in space.", thickness, default_normal)
    reference = first.orientation
    if any(np.max(np.abs(h.orientation - reference)) > _ORIENTATION_TOLERANCE for h in headers):
        return finish(by_instance, f"{label} mixes slices with different orientations (for example a localizer "
                      "and axial images), so it is not one volume.", thickness, default_normal)
    normal = default_normal / np.linalg.norm(default_normal)
    distances = np.array([float(np.dot(h.position, normal)) for h in headers])
    order = np.argsort(distances, kind="stable")
    ordered = [headers[n] for n in order]
    distances = distances[order]
    steps = np.diff(distances)
    if np.any(steps < _DUPLICATE_TOLERANCE_MM):
        count = int(np.sum(steps < _DUPLICATE_TOLERANCE_MM))
        return finish(ordered, f"{label} has {count} slice(s) at the same position as another; it probably holds "
                      "several acquisitions (time points, echoes) that need to be split.", thickness, normal)
    median = float(np.median(steps))
    worst = int(np.argmax(steps))
    if steps[worst] > _GAP_FACTOR * median:
        return finish(ordered, f"{label} is missing slices: a gap of {steps[worst]:.2f} mm after slice {worst + 1} "
                      f"of {len(ordered)}, where slices are {median:.2f} mm apart.", median, normal)
    spacing_k = (distances[-1] - distances[0]) / (len(distances) - 1)
    return finish(ordered, None, spacing_k, normal)


def _scalar_type(headers: list[_Header]) -> str:
    """int16 when every rescaled value the headers allow is a whole number that fits int16."""
    for h in headers:
        if h.slope != int(h.slope) or h.intercept != int(h.intercept):
            return "float32"
        bits = max(1, min(h.bits_stored, 32))
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if h.signed else (0, 2**bits - 1)
        ends = (low * h.slope + h.intercept, high * h.slope + h.intercept)
        if min(ends) < -32768 or max(ends) > 32767:
            return "float32"
    return "int16"


# --------------------------------------------------------------------------------------------
# reading pixels


def read_series(series: DicomSeries, limits: Limits | None = None) -> tuple[np.ndarray, ImageInfo]:
    """The series as an array of shape (k, j, i), rescaled (RescaleSlope/Intercept applied).

    The array is int16 when every rescaled value is a whole number that fits int16, float32
    otherwise. Raises 413 past ``limits.max_voxels`` (before allocating) and 400 for a series
    with a problem or a file that cannot be decoded.
    """
    import pydicom

    limits = limits or Limits()
    name = series.description or series.uid or "DICOM series"
    check_voxels(name, series.rows * series.columns * len(series.files), limits)
    info = series.info()  # raises the series' problem
    volume: np.ndarray = np.empty((len(series.files), series.rows, series.columns), dtype=np.int16)
    for k, path in enumerate(series.files):
        try:
            ds = pydicom.dcmread(path)
            pixels = ds.pixel_array
        except RecursionError as exc:
            raise damaged(path, "its header nests data sequences hundreds of levels deep, which no scanner "
                          "writes, so it is not read.", exc) from None
        except Exception as exc:  # pydicom raises many types for bad or unsupported pixel data
            log.info("DICOM file %s: pixel data cannot be decoded: %r", path, exc)
            raise SlicerCloudError(
                f"Slice {k + 1} of {name} ({path.name}) cannot be decoded: its pixel data is damaged or in an "
                "encoding this installation cannot read.", detail=repr(exc)
            ) from None
        if pixels.shape != (series.rows, series.columns):
            raise SlicerCloudError(
                f"Slice {k + 1} of {name} ({path.name}) is {pixels.shape[-1]}x{pixels.shape[0]} instead of "
                f"{series.columns}x{series.rows}; the files changed since the folder was scanned."
            )
        slope = _number(ds.get("RescaleSlope", 1), 1.0) or 1.0
        intercept = _number(ds.get("RescaleIntercept", 0), 0.0)
        if volume.dtype == np.int16 and slope == int(slope) and intercept == int(intercept):
            values = pixels.astype(np.int64) * int(slope) + int(intercept)
            if values.size == 0 or (values.min() >= -32768 and values.max() <= 32767):
                volume[k] = values
                continue
        if volume.dtype != np.float32:
            volume = volume.astype(np.float32)  # once: earlier slices were exact, so nothing is lost
        volume[k] = pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    return volume, ImageInfo(
        path=info.path,
        format="dicom",
        dimensions=info.dimensions,
        spacing=info.spacing,
        origin=info.origin,
        direction=info.direction,
        scalar_type=volume.dtype.name,
    )


# --------------------------------------------------------------------------------------------
# used by images.inspect_image


def choose_series(folder: Path, limits: Limits, series_uid: str | None = None) -> DicomSeries:
    """The series of ``folder`` to open: the one named, or the only one (a 400 listing them when
    there are several). Does not check the series' problem; :meth:`DicomSeries.info` raises it."""
    series = find_series(folder, limits)
    if not series:
        raise SlicerCloudError(f"The folder {folder.name} holds no DICOM images Slicer can open.")
    if series_uid is not None:
        chosen = next((s for s in series if s.uid == series_uid), None)
        if chosen is None:
            raise SlicerCloudError(f"No series {series_uid} in {folder.name}.", status=404)
        return chosen
    if len(series) > 1:
        listing = "; ".join(s.label for s in series[:10])
        more = f" and {len(series) - 10} more" if len(series) > 10 else ""
        raise SlicerCloudError(
            f"The folder {folder.name} holds {len(series)} DICOM series; pick one: {listing}{more}.",
            detail=", ".join(s.uid for s in series),
        )
    return series[0]


def inspect_folder(folder: Path, limits: Limits) -> ImageInfo:
    """The image in a folder holding one DICOM series; a 400 listing the series when there are several."""
    return _checked_info(choose_series(folder, limits), limits)


def file_series(path: Path) -> DicomSeries:
    """A single DICOM file as a one-slice series (its problem set when it cannot be opened)."""
    series = _group([path])
    if not series:
        raise SlicerCloudError(f"{path.name} is not a DICOM image Slicer can open.")
    return series[0]


def inspect_file(path: Path, limits: Limits) -> ImageInfo:
    """A single DICOM file, as a one-slice image."""
    return _checked_info(file_series(path), limits)


def _checked_info(series: DicomSeries, limits: Limits) -> ImageInfo:
    info = series.info()
    check_voxels(series.description or "The DICOM series", info.voxels, limits)
    return info
