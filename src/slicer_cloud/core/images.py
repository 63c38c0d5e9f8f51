"""Untrusted image files: what they are and whether they are safe to load, from headers alone.

:func:`inspect_image` reads only headers (and, for compressed files, streams the data through
zlib to count it, never holding it), checks every size against :class:`~slicer_cloud.config.Limits`
before anything is allocated, and raises :class:`~slicer_cloud.errors.SlicerCloudError` with a
message a user understands. Geometry is reported the way Slicer files store it: LPS millimetres,
direction columns along the i, j, k axes.

NRRD lives in :mod:`slicer_cloud.core.nrrd_io` and DICOM in :mod:`slicer_cloud.core.dicom`;
NIfTI and MetaImage are read here.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from slicer_cloud.config import Limits
from slicer_cloud.errors import SlicerCloudError

log = logging.getLogger(__name__)

Vector3 = tuple[float, float, float]
Matrix3 = tuple[Vector3, Vector3, Vector3]

IMAGE_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")
DICOM_SUFFIXES = (".dcm", ".dicom")

#: how many files of a folder :func:`image_kind` opens to decide whether it holds DICOM.
_DICOM_PROBE_FILES = 8
_DICOM_PROBE_ENTRIES = 256
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ImageInfo:
    """What a file's headers say about the image in it."""

    path: Path
    format: str  # "nrrd" | "nifti" | "metaimage" | "dicom"
    dimensions: tuple[int, int, int]  # i, j, k (columns, rows, slices)
    spacing: Vector3
    origin: Vector3  # LPS, millimetres
    direction: Matrix3  # LPS, columns = i, j, k axes
    scalar_type: str  # numpy dtype name
    components: int = 1
    is_segmentation: bool = False

    @property
    def voxels(self) -> int:
        i, j, k = self.dimensions
        return i * j * k * self.components

    @property
    def nbytes(self) -> int:
        return self.voxels * np.dtype(self.scalar_type).itemsize

    def summary(self) -> str:
        """A few lines a person reads: size, type, spacing, where it sits."""
        i, j, k = self.dimensions
        kind = "segmentation" if self.is_segmentation else "volume"
        channels = f" x {self.components} components" if self.components > 1 else ""
        megabytes = self.nbytes / 1024**2
        return "\n".join(
            [
                f"{self.path.name}: {self.format} {kind}, {i} x {j} x {k} voxels{channels}, {self.scalar_type} ({megabytes:.1f} MiB)",
                "  spacing (mm): " + ", ".join(f"{v:g}" for v in self.spacing),
                "  origin (LPS mm): " + ", ".join(f"{v:.3f}" for v in self.origin),
                "  axes i, j, k (LPS): "
                + "; ".join("(" + ", ".join(f"{row[n]:.3f}" for row in self.direction) + ")" for n in range(3)),
            ]
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (for APIs and logs)."""
        data = asdict(self)
        data["path"] = str(self.path)
        data["voxels"] = self.voxels
        return data


# --------------------------------------------------------------------------------------------
# by name


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".nii.gz", *IMAGE_SUFFIXES, *DICOM_SUFFIXES):
        if name.endswith(suffix):
            return suffix
    return ""


_LABEL_HINT = re.compile(r"label|seg", re.IGNORECASE)


def looks_like_segmentation(path: Path, dtype: np.dtype | str | None = None) -> bool:
    """A ``.seg.nrrd``, or an integer image whose name says label or seg (Slicer's own hint)."""
    name = path.name.lower()
    if name.endswith(".seg.nrrd") or name.endswith(".seg.nhdr"):
        return True
    if dtype is not None and np.dtype(dtype).kind not in "iub":
        return False
    return bool(_LABEL_HINT.search(name))


def image_kind(path: Path) -> str | None:
    """``"volume"``, ``"segmentation"``, ``"dicom"`` or None, judged by the name alone.

    A folder is ``"dicom"`` when one of its first few files (one or two levels down included)
    starts with the DICOM preamble; nothing else is opened.
    """
    path = Path(path)
    if path.is_dir():
        return "dicom" if _folder_has_dicom(path) else None
    suffix = _suffix(path)
    if suffix in DICOM_SUFFIXES:
        return "dicom"
    if suffix in IMAGE_SUFFIXES:
        return "segmentation" if looks_like_segmentation(path) else "volume"
    return None


def is_dicom_file(path: Path) -> bool:
    """Whether ``path`` carries the 'DICM' marker after the 128-byte preamble."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _folder_has_dicom(folder: Path) -> bool:
    probed = 0
    seen = 0
    pending = [(folder, 0)]
    while pending:
        directory, depth = pending.pop(0)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > _DICOM_PROBE_ENTRIES or probed >= _DICOM_PROBE_FILES:
                return False
            if entry.name.startswith("."):
                continue
            if entry.is_file(follow_symlinks=False):
                probed += 1
                if is_dicom_file(Path(entry.path)):
                    return True
            elif entry.is_dir(follow_symlinks=False) and depth < 2:
                pending.append((Path(entry.path), depth + 1))
    return False


# --------------------------------------------------------------------------------------------
# shared checks (used by the NRRD and DICOM readers too)


def not_an_image(path: Path, reason: str) -> SlicerCloudError:
    return SlicerCloudError(f"{path.name} is not an image Slicer can open: {reason}")


def check_voxels(name: str, voxels: int, limits: Limits) -> None:
    """Refuse a header that declares more voxels than allowed, before anything is allocated."""
    if voxels > limits.max_voxels:
        raise SlicerCloudError(
            f"{name} declares {voxels:,} voxels, more than the limit of {limits.max_voxels:,} "
            "(setting SLICER_CLOUD_MAX_VOXELS).",
            status=413,
        )


def truncated(name: str, data_path: Path, needed: int, available: int) -> SlicerCloudError:
    where = name if data_path.name == name else f"{name} (data file {data_path.name})"
    return SlicerCloudError(
        f"{where} is truncated: the header promises {needed:,} bytes of pixel data but the file holds "
        f"only {available:,}. It was probably cut short while copying or uploading."
    )


def third_axis(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The slice axis of a 2D image: unit normal to its two in-plane axes (spacing 1 mm)."""
    normal = np.cross(a, b)
    length = np.linalg.norm(normal)
    return normal / length if length > 0 else np.array([0.0, 0.0, 1.0])


def spacing_and_direction(name: str, vectors: list[np.ndarray]) -> tuple[Vector3, Matrix3]:
    """Split three axis vectors (spacing x unit direction) into spacing and a direction matrix."""
    spacing = [float(np.linalg.norm(v)) for v in vectors]
    for value in spacing:
        if not np.isfinite(value) or value <= 0:
            raise SlicerCloudError(
                f"{name} has a voxel spacing of {value:g} mm; spacing must be a positive, finite number."
            )
    columns = np.column_stack([v / s for v, s in zip(vectors, spacing)])
    if abs(np.linalg.det(columns)) < 1e-6:
        raise SlicerCloudError(f"{name} has image axes that are parallel to each other, so it has no volume.")
    direction = tuple(tuple(float(x) for x in row) for row in columns)
    return (spacing[0], spacing[1], spacing[2]), direction  # type: ignore[return-value]


def detached_data_path(header_path: Path, reference: str) -> Path:
    """The data file a header names, which must lie in the header's own folder (or below it)."""
    name = header_path.name
    text = reference.strip()
    if not text or text.upper() == "LIST" or "%" in text or len(text.split()) > 1:
        raise SlicerCloudError(
            f"{name} spreads its pixels over several data files ({text[:80]!r}); slicer-cloud reads one data file."
        )
    pure = PurePosixPath(text.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or re.match(r"^[A-Za-z]:", text):
        raise SlicerCloudError(
            f"{name} points to the data file {text!r} outside its own folder, which is not allowed.", status=403
        )
    folder = header_path.parent.resolve()
    target = (folder / pure).resolve()
    if folder not in target.parents:
        raise SlicerCloudError(
            f"{name} points to the data file {text!r} outside its own folder, which is not allowed.", status=403
        )
    if not target.is_file():
        raise SlicerCloudError(f"{name} needs the data file {text!r} next to it, and it is missing.")
    return target


def check_compressed(name: str, data_path: Path, offset: int, expected: int, limits: Limits) -> int:
    """Stream-decompress zlib or gzip data at ``offset`` of ``data_path`` and check its size.

    The output is counted and dropped in chunks, so a gzip bomb costs CPU time bounded by
    ``min(expected, limits.max_decompressed_bytes)`` and no memory. Raises for a stream that is
    corrupt, shorter than ``expected`` bytes, longer than ``expected``, or past the limit.
    Returns the number of bytes read from the file.
    """
    if expected > limits.max_decompressed_bytes:
        raise SlicerCloudError(
            f"{name} would expand to {expected:,} bytes, more than the limit of "
            f"{limits.max_decompressed_bytes:,} (setting SLICER_CLOUD_MAX_DECOMPRESSED_BYTES).",
            status=413,
        )
    produced = 0
    consumed = 0
    with open(data_path, "rb") as handle:
        handle.seek(offset)
        # 32 + MAX_WBITS: accept both the gzip and the zlib container (NRRD writes gzip, MetaIO zlib).
        inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)
        pending = b""
        while True:
            if not pending:
                pending = handle.read(_CHUNK)
                consumed += len(pending)
                if not pending:
                    break
            try:
                # never more output per call than one chunk past what the header promises
                out = inflater.decompress(pending, _CHUNK)
            except zlib.error as exc:
                raise SlicerCloudError(
                    f"{name} has corrupt compressed pixel data: it does not decompress.", detail=str(exc)
                ) from None
            pending = inflater.unconsumed_tail
            produced += len(out)
            if produced > expected:
                raise SlicerCloudError(
                    f"{name} holds more compressed pixel data than its header declares ({expected:,} bytes); "
                    "refusing it (it may be a decompression bomb)."
                )
            if inflater.eof:
                rest = inflater.unused_data + pending
                pending = b""
                if rest.startswith(b"\x1f\x8b"):  # another gzip member follows: keep counting
                    inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)
                    pending = rest
                    continue
                break
    if produced < expected:
        raise SlicerCloudError(
            f"{name} is truncated: its header promises {expected:,} bytes of pixel data but the compressed "
            f"data expands to only {produced:,}."
        )
    return consumed


# --------------------------------------------------------------------------------------------
# the entry point


def inspect_image(path: Path, limits: Limits | None = None, *, check_data: bool = True) -> ImageInfo:
    """Read and check the headers of the image at ``path`` (a file, or a folder of DICOM files).

    ``check_data`` (default on) also checks that compressed pixel data expands to exactly the
    declared size, by streaming it once; raw data is always checked by file size.
    """
    path = Path(path)
    limits = limits or Limits()
    if not path.exists():
        raise SlicerCloudError(f"No such file: {path.name}", status=404)
    if path.is_dir():
        from slicer_cloud.core import dicom

        return dicom.inspect_folder(path, limits)
    suffix = _suffix(path)
    try:
        if suffix in (".nrrd", ".nhdr"):
            from slicer_cloud.core import nrrd_io

            return nrrd_io.inspect_nrrd(path, limits, check_data=check_data)
        if suffix in (".nii", ".nii.gz"):
            return inspect_nifti(path, limits, check_data=check_data)
        if suffix in (".mha", ".mhd"):
            return inspect_metaimage(path, limits, check_data=check_data)
        if suffix in DICOM_SUFFIXES or is_dicom_file(path):
            from slicer_cloud.core import dicom

            return dicom.inspect_file(path, limits)
    except OSError as exc:
        raise SlicerCloudError(f"{path.name} could not be read ({exc.strerror}).", detail=str(exc)) from None
    except SlicerCloudError:
        raise
    except (ArithmeticError, ValueError, TypeError, IndexError, KeyError, struct.error, zlib.error, RecursionError,
            UnicodeError) as exc:
        # A header this reader did not foresee: refuse it in words, keep the exception for the log.
        log.warning("unforeseen header of %s: %r", path, exc)
        raise SlicerCloudError(
            f"{path.name} is damaged: its header holds values that make no sense, so it is not opened.", detail=repr(exc)
        ) from None
    raise not_an_image(
        path, "slicer-cloud opens NRRD (.nrrd, .nhdr), NIfTI (.nii, .nii.gz), MetaImage (.mha, .mhd) and DICOM."
    )


# --------------------------------------------------------------------------------------------
# NIfTI-1 and NIfTI-2

#: NIfTI datatype code -> (numpy dtype, components).
_NIFTI_TYPES = {
    2: ("uint8", 1),
    4: ("int16", 1),
    8: ("int32", 1),
    16: ("float32", 1),
    64: ("float64", 1),
    128: ("uint8", 3),  # RGB24
    256: ("int8", 1),
    512: ("uint16", 1),
    768: ("uint32", 1),
    1024: ("int64", 1),
    1280: ("uint64", 1),
    2304: ("uint8", 4),  # RGBA32
}
_NIFTI_UNSUPPORTED = {1: "1-bit binary", 32: "complex64", 1536: "float128", 1792: "complex128", 2048: "complex256"}

# field name -> (offset, struct code); '<' or '>' is prefixed when unpacking.
_NIFTI1 = {
    "dim": (40, "8h"), "datatype": (70, "h"), "bitpix": (72, "h"), "pixdim": (76, "8f"), "vox_offset": (108, "f"),
    "qform_code": (252, "h"), "sform_code": (254, "h"), "quatern": (256, "6f"), "srow": (280, "12f"),
    "magic": (344, "4s"),
}
_NIFTI2 = {
    "magic": (4, "8s"), "datatype": (12, "h"), "bitpix": (14, "h"), "dim": (16, "8q"), "pixdim": (104, "8d"),
    "vox_offset": (168, "q"), "qform_code": (344, "i"), "sform_code": (348, "i"), "quatern": (352, "6d"),
    "srow": (400, "12d"),
}


def _read_head(path: Path, size: int, gzipped: bool) -> bytes:
    """The first ``size`` bytes of a file, decompressing at most that much of a gzip file."""
    with open(path, "rb") as handle:
        if not gzipped:
            return handle.read(size)
        inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)
        out = b""
        while len(out) < size:
            chunk = handle.read(64 * 1024)
            if not chunk:
                break
            try:
                out += inflater.decompress(chunk, size - len(out))
                while inflater.unconsumed_tail and len(out) < size:
                    out += inflater.decompress(inflater.unconsumed_tail, size - len(out))
            except zlib.error as exc:
                raise SlicerCloudError(f"{path.name} is not a valid gzip file: it does not decompress.", detail=str(exc)) from None
            if inflater.eof:
                break
        return out


def inspect_nifti(path: Path, limits: Limits, *, check_data: bool = True) -> ImageInfo:
    name = path.name
    gzipped = name.lower().endswith(".gz")
    if gzipped:
        with open(path, "rb") as handle:
            if handle.read(2) != b"\x1f\x8b":
                raise not_an_image(path, "it is named .nii.gz but is not gzip-compressed.")
    head = _read_head(path, 540, gzipped)
    if len(head) < 4:
        raise not_an_image(path, "it is too short to hold a NIfTI header.")
    layout, endian = None, ""
    for order in ("<", ">"):
        size = struct.unpack(order + "i", head[:4])[0]
        if size == 348:
            layout, endian = _NIFTI1, order
        elif size == 540:
            layout, endian = _NIFTI2, order
        if layout:
            break
    if layout is None:
        raise not_an_image(path, "its first bytes are not a NIfTI-1 or NIfTI-2 header.")
    version = 1 if layout is _NIFTI1 else 2
    header_size = 348 if version == 1 else 540
    if len(head) < header_size:
        raise SlicerCloudError(f"{name} is truncated: it ends inside its NIfTI header.")
    field = {key: struct.unpack_from(endian + code, head, offset) for key, (offset, code) in layout.items()}
    magic = field["magic"][0]
    if version == 1 and magic[:3] == b"ni1":
        raise SlicerCloudError(
            f"{name} is the header of a NIfTI .hdr/.img pair; save the image as a single .nii or .nii.gz file."
        )
    if (version == 1 and magic[:3] != b"n+1") or (version == 2 and magic[:3] != b"n+2"):
        raise not_an_image(path, f"its NIfTI-{version} header has no valid magic string.")

    datatype = field["datatype"][0]
    if datatype in _NIFTI_UNSUPPORTED:
        raise SlicerCloudError(f"{name} has {_NIFTI_UNSUPPORTED[datatype]} pixels, which Slicer cannot show.")
    if datatype not in _NIFTI_TYPES:
        raise SlicerCloudError(f"{name} declares an unknown NIfTI data type (code {datatype}).")
    dtype_name, components = _NIFTI_TYPES[datatype]
    dtype = np.dtype(dtype_name)
    if field["bitpix"][0] != dtype.itemsize * 8 * components:
        raise SlicerCloudError(
            f"{name} has an inconsistent header: {field['bitpix'][0]} bits per voxel for a {dtype_name} image."
        )

    dim = [int(d) for d in field["dim"]]
    ndim = dim[0]
    if not 1 <= ndim <= 7:
        raise SlicerCloudError(f"{name} declares {ndim} dimensions; a NIfTI image has 1 to 7.")
    sizes = dim[1 : ndim + 1]
    if any(n <= 0 for n in sizes):
        raise SlicerCloudError(f"{name} declares a size of zero or less ({' x '.join(map(str, sizes))}).")
    if ndim < 2:
        raise SlicerCloudError(f"{name} is a 1-dimensional array, not an image.")
    sizes += [1] * (7 - len(sizes))
    check_voxels(name, int(np.prod(sizes, dtype=object)) * components, limits)
    if sizes[3] > 1:
        raise SlicerCloudError(
            f"{name} is a 4D time series ({sizes[3]} volumes); slicer-cloud opens one volume at a time."
        )
    if sizes[5] > 1 or sizes[6] > 1:
        raise SlicerCloudError(f"{name} has more than one non-spatial dimension, which Slicer cannot show.")
    if sizes[4] > 1:
        if components > 1:
            raise SlicerCloudError(f"{name} has both colour and vector components, which Slicer cannot show.")
        components = sizes[4]  # a vector image (NIfTI keeps components in the 5th dimension)
    dimensions = (sizes[0], sizes[1], sizes[2])

    pixdim = [float(p) for p in field["pixdim"]]
    spacing_in = [abs(p) for p in pixdim[1:4]]
    if ndim == 2:
        spacing_in[2] = spacing_in[2] if np.isfinite(spacing_in[2]) and spacing_in[2] > 0 else 1.0
    for value in spacing_in:
        if not np.isfinite(value) or value <= 0:
            raise SlicerCloudError(
                f"{name} has a voxel spacing (pixdim) of {value:g} mm; spacing must be a positive, finite number."
            )
    ras_axes, ras_origin = _nifti_affine(name, field, pixdim, spacing_in)
    lps = np.array([-1.0, -1.0, 1.0])  # NIfTI world space is RAS; Slicer files store LPS
    vectors = [ras_axes[:, n] * lps for n in range(3)]
    spacing, direction = spacing_and_direction(name, vectors)
    origin = ras_origin * lps

    if version == 2:
        # Slicer reads NIfTI through ITK, which only carries the NIfTI-1 library.
        raise SlicerCloudError(
            f"{name} is a NIfTI-2 file, which Slicer cannot open; save it as NIfTI-1 (.nii or .nii.gz)."
        )
    raw_offset = float(field["vox_offset"][0])
    if not np.isfinite(raw_offset) or raw_offset < header_size or raw_offset > 2**40:
        raise SlicerCloudError(f"{name} has an invalid data offset (vox_offset {field['vox_offset'][0]}).")
    vox_offset = int(raw_offset)
    if vox_offset < header_size or vox_offset > 2**40:
        raise SlicerCloudError(f"{name} has an invalid data offset (vox_offset {field['vox_offset'][0]}).")
    info = ImageInfo(
        path=path,
        format="nifti",
        dimensions=dimensions,
        spacing=spacing,
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=direction,
        scalar_type=dtype.name,
        components=components,
        is_segmentation=looks_like_segmentation(path, dtype),
    )
    if gzipped:
        if check_data:
            check_compressed(name, path, 0, vox_offset + info.nbytes, limits)
    else:
        available = path.stat().st_size - vox_offset
        if available < info.nbytes:
            raise truncated(name, path, info.nbytes, max(available, 0))
    return info


def _nifti_affine(name: str, field: dict, pixdim: list[float], spacing: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """RAS axis vectors (columns, spacing included) and origin, chosen the way ITK (and so
    Slicer) chooses: the sform when it is the scanner's or there is no qform, else the qform;
    spacing always from pixdim; neither form: LPS-aligned axes at the origin."""
    sform_code, qform_code = field["sform_code"][0], field["qform_code"][0]
    if sform_code > 0 and (sform_code == 1 or qform_code <= 0):
        srow = np.asarray(field["srow"], dtype=float).reshape(3, 4)
        axes = _orthonormal_columns(srow[:, :3]) if np.all(np.isfinite(srow)) else None
        if axes is not None:
            return axes * np.asarray(spacing), srow[:, 3]
        if qform_code <= 0:
            raise SlicerCloudError(
                f"{name} has a sheared or invalid orientation (sform) and no qform to fall back on; "
                "Slicer only places images with perpendicular axes."
            )
    if qform_code > 0:
        b, c, d, qx, qy, qz = (float(x) for x in field["quatern"])
        if not all(np.isfinite((b, c, d, qx, qy, qz))):
            raise SlicerCloudError(f"{name} has a non-finite orientation (qform).")
        a2 = 1.0 - (b * b + c * c + d * d)
        if a2 < -1e-6:
            raise SlicerCloudError(f"{name} has an invalid orientation quaternion (qform).")
        a = float(np.sqrt(max(a2, 0.0)))
        rotation = np.array(
            [
                [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
                [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
            ]
        )
        qfac = -1.0 if pixdim[0] < 0 else 1.0
        scale = np.array([spacing[0], spacing[1], spacing[2] * qfac])
        return rotation * scale, np.array([qx, qy, qz])
    # No orientation at all (ANALYZE-style): ITK places the axes along L, P, S from the origin.
    return np.diag([-spacing[0], -spacing[1], spacing[2]]), np.zeros(3)


def _orthonormal_columns(matrix: np.ndarray) -> np.ndarray | None:
    """The unit columns of ``matrix`` when they are perpendicular (no shear), else None."""
    norms = np.linalg.norm(matrix, axis=0)
    if np.any(norms <= 0):
        return None
    unit = matrix / norms
    gram = unit.T @ unit
    return unit if np.allclose(gram, np.eye(3), atol=1e-3) else None


# --------------------------------------------------------------------------------------------
# MetaImage (.mha / .mhd)

_MET_TYPES = {
    "MET_CHAR": "int8",
    "MET_UCHAR": "uint8",
    "MET_SHORT": "int16",
    "MET_USHORT": "uint16",
    "MET_INT": "int32",
    "MET_UINT": "uint32",
    "MET_LONG": "int32",  # MetaIO's LONG is 4 bytes
    "MET_ULONG": "uint32",
    "MET_LONG_LONG": "int64",
    "MET_ULONG_LONG": "uint64",
    "MET_FLOAT": "float32",
    "MET_DOUBLE": "float64",
}
_MAX_META_HEADER = 64 * 1024


def _read_meta_header(path: Path) -> tuple[dict[str, str], int]:
    """MetaImage ``Key = Value`` lines up to and including ElementDataFile; offset after it."""
    with open(path, "rb") as handle:
        raw = handle.read(_MAX_META_HEADER)
    fields: dict[str, str] = {}
    position = 0
    while position < len(raw):
        end = raw.find(b"\n", position)
        if end < 0:
            if len(raw) >= _MAX_META_HEADER:
                raise SlicerCloudError(f"{path.name} has a MetaImage header longer than 64 KiB.")
            end = len(raw)
        line = raw[position:end].rstrip(b"\r").decode("latin-1")
        position = end + 1
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"\s*[A-Za-z][A-Za-z0-9_]*\s*", key):
            if not fields:
                raise not_an_image(path, "it does not start with MetaImage 'Key = Value' lines.")
            raise SlicerCloudError(f"{path.name} has a malformed MetaImage header line: {line[:80]!r}.")
        fields[key.strip()] = value.strip()
        if key.strip() == "ElementDataFile":
            return fields, min(position, len(raw))
    if not fields:
        raise not_an_image(path, "it does not start with MetaImage 'Key = Value' lines.")
    raise SlicerCloudError(f"{path.name} is not a complete MetaImage header: it has no ElementDataFile line.")


def _numbers(fields: dict[str, str], key: str, count: int, name: str, kind=float) -> list:
    try:
        values = [kind(v) for v in fields[key].split()]
    except ValueError:
        raise SlicerCloudError(f"{name} has an unreadable {key}: {fields[key][:80]!r}.") from None
    if len(values) != count:
        raise SlicerCloudError(f"{name} lists {len(values)} values in {key}; expected {count}.")
    if kind is float and not all(np.isfinite(values)):
        raise SlicerCloudError(f"{name} has a non-finite value in {key}.")
    return values


def inspect_metaimage(path: Path, limits: Limits, *, check_data: bool = True) -> ImageInfo:
    name = path.name
    fields, header_end = _read_meta_header(path)
    object_type = fields.get("ObjectType", "Image")
    if object_type.lower() != "image":
        raise not_an_image(path, f"it is a MetaIO {object_type!r} object, not an image.")
    if "NDims" not in fields or "DimSize" not in fields or "ElementType" not in fields:
        raise SlicerCloudError(f"{name} is not a valid MetaImage: it needs NDims, DimSize and ElementType.")
    try:
        ndims = int(fields["NDims"])
    except ValueError:
        raise SlicerCloudError(f"{name} has an unreadable NDims: {fields['NDims'][:20]!r}.") from None
    if ndims > 3:
        raise SlicerCloudError(f"{name} has {ndims} dimensions; slicer-cloud opens 2D and 3D images.")
    if ndims < 2:
        raise SlicerCloudError(f"{name} has {ndims} dimensions, so it is not an image.")
    sizes = _numbers(fields, "DimSize", ndims, name, int)
    if any(n <= 0 for n in sizes):
        raise SlicerCloudError(f"{name} declares a size of zero or less ({fields['DimSize']}).")
    try:
        components = int(fields.get("ElementNumberOfChannels", "1"))
    except ValueError:
        raise SlicerCloudError(f"{name} has an unreadable ElementNumberOfChannels.") from None
    if components <= 0:
        raise SlicerCloudError(f"{name} declares {components} channels per voxel.")
    check_voxels(name, int(np.prod(sizes, dtype=object)) * components, limits)
    dtype_name = _MET_TYPES.get(fields["ElementType"].strip().upper())
    if dtype_name is None:
        raise SlicerCloudError(f"{name} has pixels of type {fields['ElementType']!r}, which Slicer cannot show.")
    dtype = np.dtype(dtype_name)

    spacing_key = "ElementSpacing" if "ElementSpacing" in fields else "ElementSize" if "ElementSize" in fields else None
    spacing_in = _numbers(fields, spacing_key, ndims, name) if spacing_key else [1.0] * ndims
    origin_key = next((k for k in ("Offset", "Origin", "Position") if k in fields), None)
    origin_in = _numbers(fields, origin_key, ndims, name) if origin_key else [0.0] * ndims
    matrix_key = next((k for k in ("TransformMatrix", "Rotation", "Orientation") if k in fields), None)
    matrix = _numbers(fields, matrix_key, ndims * ndims, name) if matrix_key else list(np.eye(ndims).ravel())
    # MetaIO lists the direction of axis 0 first, then axis 1, ... (as ITK and Slicer read it).
    axes = [np.zeros(3) for _ in range(ndims)]
    for axis in range(ndims):
        axes[axis][:ndims] = matrix[axis * ndims : (axis + 1) * ndims]
        axes[axis] = axes[axis] * spacing_in[axis]
    for value in spacing_in:
        if not np.isfinite(value) or value <= 0:
            raise SlicerCloudError(
                f"{name} has a voxel spacing of {value:g} mm; spacing must be a positive, finite number."
            )
    origin = list(origin_in) + [0.0] * (3 - ndims)
    if ndims == 2:
        sizes.append(1)
        axes.append(third_axis(axes[0], axes[1]))
    spacing, direction = spacing_and_direction(name, axes)

    reference = fields["ElementDataFile"]
    if reference.upper() == "LOCAL":
        data_path, offset = path, header_end
    else:
        data_path, offset = detached_data_path(path, reference), 0
    try:
        header_size = int(fields.get("HeaderSize", "0"))
    except ValueError:
        raise SlicerCloudError(f"{name} has an unreadable HeaderSize.") from None
    compressed = fields.get("CompressedData", "False").strip().lower() == "true"
    info = ImageInfo(
        path=path,
        format="metaimage",
        dimensions=(sizes[0], sizes[1], sizes[2]),
        spacing=spacing,
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=direction,
        scalar_type=dtype.name,
        components=components,
        is_segmentation=looks_like_segmentation(path, dtype),
    )
    if header_size < -1:
        raise SlicerCloudError(f"{name} has an invalid HeaderSize of {header_size}.")
    if compressed:
        if header_size == -1:
            raise SlicerCloudError(f"{name} combines HeaderSize -1 with compressed data, which is invalid.")
        if check_data:
            check_compressed(name, data_path, offset + header_size, info.nbytes, limits)
    else:
        available = data_path.stat().st_size - offset - max(header_size, 0)
        if available < info.nbytes:
            raise truncated(name, data_path, info.nbytes, max(available, 0))
    return info
