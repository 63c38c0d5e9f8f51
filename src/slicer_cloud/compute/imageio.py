"""Reading and writing NRRD, NIfTI-1 and MetaImage volumes with numpy alone.

The built-in modules run as small processes; this keeps them free of VTK (about a second to
import) and lets every read check the header against :class:`~slicer_cloud.config.Limits`
before it allocates anything.

Conventions (those of Slicer and ITK): arrays are indexed ``[k, j, i]`` (plus a last component
axis when there are several), ``spacing`` is per ``(i, j, k)``, ``origin`` and ``direction`` are
in LPS, and column ``c`` of ``direction`` is the unit vector of axis ``c``.
"""

from __future__ import annotations

import bz2
import re
import gzip
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slicer_cloud.config import Limits
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store.atomic import atomic_output

SUFFIXES = {".nrrd": "nrrd", ".nhdr": "nrrd", ".nii": "nifti", ".nii.gz": "nifti", ".mha": "metaimage", ".mhd": "metaimage"}
_MAX_HEADER = 1024 * 1024
_LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0])


@dataclass
class Volume:
    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))

    @property
    def dimensions(self) -> tuple[int, int, int]:
        k, j, i = self.array.shape[:3]
        return (i, j, k)

    @property
    def components(self) -> int:
        return 1 if self.array.ndim == 3 else int(self.array.shape[3])

    def ijk_to_lps(self) -> np.ndarray:
        matrix = np.eye(4)
        matrix[:3, :3] = np.asarray(self.direction, float) @ np.diag(self.spacing)
        matrix[:3, 3] = self.origin
        return matrix

    def with_array(self, array: np.ndarray, **changes) -> Volume:
        values = dict(spacing=self.spacing, origin=self.origin, direction=self.direction)
        values.update(changes)
        return Volume(array, **values)


def image_format(path: Path) -> str | None:
    name = Path(path).name.lower()
    for suffix, fmt in SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    return None


def read_volume(path: Path, limits: Limits | None = None) -> Volume:
    """Read a volume, refusing (with a user message) headers that exceed the limits."""
    path = Path(path)
    fmt = image_format(path)
    limits = limits or Limits()
    from slicer_cloud.core.images import DICOM_SUFFIXES, inspect_image, is_dicom_file

    if fmt is not None or path.name.lower().endswith(DICOM_SUFFIXES) or is_dicom_file(path):
        # The same header checks (and so the same verdict and message) as every other entry point.
        inspect_image(path, limits)
    try:
        if fmt == "nrrd":
            return _read_nrrd(path, limits)
        if fmt == "nifti":
            return _read_nifti(path, limits)
        if fmt == "metaimage":
            return _read_metaimage(path, limits)
    except SlicerCloudError:
        raise
    except (ValueError, KeyError, IndexError, OSError, EOFError, zlib.error, struct.error) as error:
        raise SlicerCloudError(
            f"{path.name} is not a readable {fmt} image: its header or pixel data is damaged.", status=400, detail=repr(error)
        ) from error
    raise SlicerCloudError(
        f"{path.name}: unknown image format; use one of {', '.join(SUFFIXES)}.", status=415
    )


def write_volume(path: Path, volume: Volume, *, compress: bool = True) -> Path:
    """Write atomically; the format follows the suffix (.nrrd, .nii, .nii.gz, .mha)."""
    path = Path(path)
    fmt = image_format(path)
    if fmt is None or path.name.lower().endswith((".nhdr", ".mhd")):
        raise SlicerCloudError(f"Cannot write {path.name}: use .nrrd, .nii, .nii.gz or .mha.", status=422)
    with atomic_output(path) as tmp:
        if fmt == "nrrd":
            _write_nrrd(tmp, volume, compress)
        elif fmt == "nifti":
            _write_nifti(tmp, volume, gz=path.name.lower().endswith(".gz"))
        else:
            _write_metaimage(tmp, volume, compress)
    return path


# --- shared helpers --------------------------------------------------------------------------
def _check_size(name: str, shape: tuple[int, ...], dtype: np.dtype, limits: Limits) -> int:
    if any(n <= 0 for n in shape):
        raise SlicerCloudError(f"{name}: the header declares an empty or negative size {shape}.", status=400)
    voxels = int(np.prod([int(n) for n in shape], dtype=object))
    if voxels > limits.max_voxels:
        raise SlicerCloudError(
            f"{name}: {voxels:,} voxels is more than the limit of {limits.max_voxels:,} (max_voxels).", status=413
        )
    nbytes = voxels * dtype.itemsize
    if nbytes > limits.max_decompressed_bytes:
        raise SlicerCloudError(
            f"{name}: {nbytes:,} bytes of voxel data is more than the limit of {limits.max_decompressed_bytes:,}.",
            status=413,
        )
    return nbytes


def _read_exact(handle, nbytes: int, encoding: str, name: str) -> bytes:
    """Read ``nbytes`` of voxel data, decompressing on the fly and never past ``nbytes``."""
    if encoding == "raw":
        data = handle.read(nbytes)
    else:
        decoder = zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding in ("gzip", "zlib") else bz2.BZ2Decompressor()
        parts: list[bytes] = []
        got = 0
        while got < nbytes:
            chunk = handle.read(1 << 20)
            if not chunk:
                break
            if isinstance(decoder, bz2.BZ2Decompressor):
                out = decoder.decompress(chunk, max_length=nbytes - got)
            else:
                out = decoder.decompress(chunk, nbytes - got)
            parts.append(out)
            got += len(out)
            if isinstance(decoder, bz2.BZ2Decompressor):
                if decoder.eof:
                    break
            else:
                # drain what zlib kept back because of max_length
                while got < nbytes and decoder.unconsumed_tail:
                    out = decoder.decompress(decoder.unconsumed_tail, nbytes - got)
                    if not out:
                        break
                    parts.append(out)
                    got += len(out)
                if decoder.eof:
                    break
        data = b"".join(parts)
    if len(data) < nbytes:
        raise SlicerCloudError(
            f"{name} is truncated: {len(data):,} bytes of voxel data where the header declares {nbytes:,}.", status=400
        )
    return data


def _geometry_from_matrix(matrix: np.ndarray) -> tuple[tuple, tuple, np.ndarray]:
    """spacing, origin, direction from a 4x4 (or 3x4) IJK-to-LPS matrix."""
    axes = np.asarray(matrix[:3, :3], float)
    spacing = np.linalg.norm(axes, axis=0)
    if np.any(spacing <= 0) or not np.all(np.isfinite(axes)):
        raise SlicerCloudError("The image geometry is degenerate (a zero or non-finite axis).", status=400)
    return tuple(float(s) for s in spacing), tuple(float(v) for v in matrix[:3, 3]), axes / spacing


# --- NRRD ------------------------------------------------------------------------------------
_NRRD_TYPES = {
    "int8": ("signed char", "int8", "int8_t", "char"),
    "uint8": ("uchar", "unsigned char", "uint8", "uint8_t"),
    "int16": ("short", "short int", "signed short", "signed short int", "int16", "int16_t"),
    "uint16": ("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"),
    "int32": ("int", "signed int", "int32", "int32_t"),
    "uint32": ("uint", "unsigned int", "uint32", "uint32_t"),
    "int64": ("longlong", "long long", "long long int", "signed long long", "signed long long int", "int64", "int64_t"),
    "uint64": ("ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t"),
    "float32": ("float",),
    "float64": ("double",),
}
_NRRD_DTYPE = {alias: np.dtype(name) for name, aliases in _NRRD_TYPES.items() for alias in aliases}
_NRRD_NAME = {"int8": "int8", "uint8": "uint8", "int16": "short", "uint16": "ushort", "int32": "int",
              "uint32": "uint", "int64": "longlong", "uint64": "ulonglong", "float32": "float", "float64": "double"}


def _parse_vector(text: str) -> list[float] | None:
    text = text.strip()
    if text == "none":
        return None
    return [float(v) for v in text.strip("()").split(",")]


def _read_nrrd_header(handle, name: str) -> dict[str, str]:
    magic = handle.readline(64)
    if not magic.startswith(b"NRRD000"):
        raise SlicerCloudError(f"{name} is not a NRRD file (it does not start with NRRD000).", status=400)
    fields: dict[str, str] = {}
    read = len(magic)
    while True:
        line = handle.readline(_MAX_HEADER)
        read += len(line)
        if read > _MAX_HEADER:
            raise SlicerCloudError(f"{name}: the NRRD header is larger than 1 MiB.", status=400)
        if not line or line in (b"\n", b"\r\n"):
            break
        text = line.decode("latin-1").rstrip("\r\n")
        if text.startswith("#"):
            continue
        if ":=" in text:
            continue  # key/value pairs (Slicer's segment metadata): not needed here
        key, sep, value = text.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return fields


def _read_nrrd(path: Path, limits: Limits) -> Volume:
    with open(path, "rb") as handle:
        fields = _read_nrrd_header(handle, path.name)
        dtype = _NRRD_DTYPE.get(fields.get("type", "").lower())
        if dtype is None:
            raise SlicerCloudError(f"{path.name}: unsupported NRRD type {fields.get('type')!r}.", status=400)
        sizes = [int(v) for v in fields["sizes"].split()]
        ndim = int(fields.get("dimension", len(sizes)))
        if ndim != len(sizes) or ndim not in (2, 3, 4):
            raise SlicerCloudError(f"{path.name}: only 2D, 3D and 4D NRRD images are supported (got {ndim}D).", status=400)
        if fields.get("endian", "little") == "big":
            dtype = dtype.newbyteorder(">")
        else:
            dtype = dtype.newbyteorder("<")
        nbytes = _check_size(path.name, tuple(sizes), dtype, limits)
        encoding = {"gz": "gzip", "bz2": "bzip2", "txt": "ascii", "text": "ascii"}.get(
            fields.get("encoding", "raw"), fields.get("encoding", "raw")
        )
        if encoding not in ("raw", "gzip", "bzip2", "ascii"):
            raise SlicerCloudError(f"{path.name}: unsupported NRRD encoding {encoding!r}.", status=400)
        data_file = fields.get("data file") or fields.get("datafile")
        if data_file:
            # A detached header may only name a file next to it: never a path elsewhere.
            if data_file.startswith("LIST") or "/" in data_file or "\\" in data_file or data_file.startswith("."):
                raise SlicerCloudError(f"{path.name}: the data file must be a plain name next to the header.", status=400)
            source = open(path.parent / data_file, "rb")
        else:
            source = handle
        try:
            skip = int(fields.get("byte skip", "0"))
            if skip == -1 and encoding == "raw":
                source.seek(-nbytes, 2)
            elif skip > 0:
                source.seek(skip, 1)
            if encoding == "ascii":
                text = source.read(nbytes * 24 + 1024)
                values = np.array(text.split()[: int(np.prod(sizes))], dtype=np.float64)
                if values.size < int(np.prod(sizes)):
                    raise SlicerCloudError(f"{path.name} is truncated (ascii data).", status=400)
                flat = values.astype(dtype.newbyteorder("="))
            else:
                flat = np.frombuffer(_read_exact(source, nbytes, encoding, path.name), dtype=dtype)
        finally:
            if source is not handle:
                source.close()
    array = flat.reshape(sizes[::-1]).astype(dtype.newbyteorder("="), copy=False)

    directions = fields.get("space directions")
    vectors = [_parse_vector(v) for v in re.findall(r"none|\([^)]*\)", directions)] if directions else None
    if ndim == 4 or (vectors and len(vectors) == 4):
        # One non-spatial axis (components or Slicer's segmentation layers): move it last.
        axis = next((a for a, v in enumerate(vectors or []) if v is None), 0)
        array = np.moveaxis(array, ndim - 1 - axis, -1)
        if vectors:
            vectors = [v for v in vectors if v is not None]
    elif ndim == 2:
        array = array[np.newaxis]
        if vectors:
            vectors = [v + [0.0] * (3 - len(v)) for v in vectors] + [[0.0, 0.0, 1.0]]
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    space = fields.get("space", "left-posterior-superior").lower()
    flip = np.diag([
        -1.0 if space.startswith(("right", "ras")) else 1.0,
        -1.0 if space.split("-")[1:2] == ["anterior"] or space in ("ras", "las") else 1.0,
        1.0,
    ])
    if vectors and len(vectors) == 3 and all(v is not None and len(v) == 3 for v in vectors):
        matrix = np.eye(4)
        matrix[:3, :3] = flip @ np.array(vectors, float).T
        origin = _parse_vector(fields.get("space origin", "(0,0,0)")) or [0.0, 0.0, 0.0]
        matrix[:3, 3] = flip @ np.array(origin[:3] + [0.0] * (3 - len(origin)), float)
        spacing, origin_t, direction = _geometry_from_matrix(matrix)
        return Volume(array, spacing, origin_t, direction)
    spacings = [float(v) for v in fields.get("spacings", "1 1 1").split() if v.lower() != "nan"] or [1.0, 1.0, 1.0]
    spacing = tuple((spacings + [1.0, 1.0, 1.0])[:3])
    return Volume(array, spacing, (0.0, 0.0, 0.0), np.eye(3))


def _write_nrrd(path: Path, volume: Volume, compress: bool) -> None:
    array = np.ascontiguousarray(volume.array)
    name = _NRRD_NAME.get(array.dtype.name)
    if name is None:
        array = array.astype(np.float32)
        name = "float"
    axes = np.asarray(volume.direction, float) @ np.diag(volume.spacing)
    vectors = " ".join("(" + ",".join(f"{v:.17g}" for v in axes[:, c]) + ")" for c in range(3))
    sizes = " ".join(str(n) for n in volume.dimensions)
    if array.ndim == 4:
        header_sizes, kinds, vectors, dim = f"{array.shape[3]} {sizes}", "vector domain domain domain", "none " + vectors, 4
    else:
        header_sizes, kinds, dim = sizes, "domain domain domain", 3
    header = (
        "NRRD0004\n"
        f"type: {name}\ndimension: {dim}\nspace: left-posterior-superior\nsizes: {header_sizes}\n"
        f"space directions: {vectors}\nkinds: {kinds}\nendian: little\n"
        f"encoding: {'gzip' if compress else 'raw'}\n"
        "space origin: (" + ",".join(f"{v:.17g}" for v in volume.origin) + ")\n\n"
    )
    data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    with open(path, "wb") as out:
        out.write(header.encode("ascii"))
        if compress:
            with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as gz:
                gz.write(data)
        else:
            out.write(data)


# --- NIfTI-1 ---------------------------------------------------------------------------------
_NIFTI_DTYPE = {2: "uint8", 4: "int16", 8: "int32", 16: "float32", 64: "float64", 256: "int8",
                512: "uint16", 768: "uint32", 1024: "int64", 1280: "uint64", 128: "uint8", 2304: "uint8"}
_NIFTI_CODE = {"uint8": 2, "int16": 4, "int32": 8, "float32": 16, "float64": 64, "int8": 256,
               "uint16": 512, "uint32": 768, "int64": 1024, "uint64": 1280}


def _open_maybe_gz(path: Path):
    with open(path, "rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _read_nifti(path: Path, limits: Limits) -> Volume:
    with _open_maybe_gz(path) as handle:
        header = handle.read(348)
        if len(header) < 348:
            raise SlicerCloudError(f"{path.name} is not a NIfTI file (shorter than its header).", status=400)
        for endian in "<>":
            if struct.unpack(endian + "i", header[:4])[0] == 348:
                break
        else:
            raise SlicerCloudError(f"{path.name} is not a NIfTI-1 file (bad header size).", status=400)
        if header[344:347] != b"n+1":
            raise SlicerCloudError(f"{path.name}: only single-file NIfTI-1 (.nii, .nii.gz) is supported.", status=400)
        u = lambda fmt, offset: struct.unpack_from(endian + fmt, header, offset)  # noqa: E731
        dims = u("8h", 40)
        code = u("h", 70)[0]
        pixdim = u("8f", 76)
        vox_offset = int(u("f", 108)[0])
        slope, inter = u("2f", 112)
        qform_code, sform_code = u("2h", 252)
        if not 1 <= dims[0] <= 5 or code not in _NIFTI_DTYPE:
            raise SlicerCloudError(f"{path.name}: unsupported NIfTI dimensions or data type ({dims[0]}D, code {code}).", status=400)
        shape = [max(1, int(d)) for d in dims[1:6]] + [1] * 5
        i, j, k, t, c = shape[:5]
        components = t * c * (3 if code == 128 else 4 if code == 2304 else 1)
        dtype = np.dtype(_NIFTI_DTYPE[code]).newbyteorder(endian)
        nbytes = _check_size(path.name, (i, j, k, components), dtype, limits)
        if vox_offset < 348:
            raise SlicerCloudError(f"{path.name}: invalid NIfTI vox_offset {vox_offset}.", status=400)
        handle.read(vox_offset - 348)
        data = handle.read(nbytes)
        if len(data) < nbytes:
            raise SlicerCloudError(f"{path.name} is truncated: {len(data):,} of {nbytes:,} bytes of voxel data.", status=400)
    flat = np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("="), copy=False)
    if code in (128, 2304):
        array = flat.reshape(k, j, i, components)
    else:
        array = np.moveaxis(flat.reshape(components, k, j, i), 0, -1) if components > 1 else flat.reshape(k, j, i)
    if slope not in (0.0, 1.0) or inter != 0.0:
        array = array.astype(np.float32) * np.float32(slope or 1.0) + np.float32(inter)
    if sform_code > 0:
        ras = np.eye(4)
        ras[0, :], ras[1, :], ras[2, :] = u("4f", 280), u("4f", 296), u("4f", 312)
    elif qform_code > 0:
        ras = _quaternion_affine(u("6f", 256), pixdim)
    else:
        ras = np.diag([abs(pixdim[1]) or 1.0, abs(pixdim[2]) or 1.0, abs(pixdim[3]) or 1.0, 1.0])
    lps = np.eye(4)
    lps[:3, :] = _LPS_FROM_RAS @ ras[:3, :]
    spacing, origin, direction = _geometry_from_matrix(lps)
    return Volume(np.ascontiguousarray(array), spacing, origin, direction)


def _quaternion_affine(q: tuple, pixdim: tuple) -> np.ndarray:
    b, c, d, x, y, z = (float(v) for v in q)
    a = np.sqrt(max(0.0, 1.0 - (b * b + c * c + d * d)))
    rotation = np.array([
        [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
        [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
        [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
    ])
    qfac = -1.0 if pixdim[0] < 0 else 1.0
    scale = np.array([pixdim[1] or 1.0, pixdim[2] or 1.0, (pixdim[3] or 1.0) * qfac])
    affine = np.eye(4)
    affine[:3, :3] = rotation * scale
    affine[:3, 3] = (x, y, z)
    return affine


def _rotation_quaternion(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """(qfac, b, c, d) of a rotation (or rotation + reflection of the last axis)."""
    r = np.array(rotation, float)
    qfac = 1.0
    if np.linalg.det(r) < 0:
        r[:, 2] = -r[:, 2]
        qfac = -1.0
    trace = r[0, 0] + r[1, 1] + r[2, 2]
    if trace > 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        a, b, c, d = 0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = 2.0 * np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])
        a, b, c, d = (r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s
    elif r[1, 1] > r[2, 2]:
        s = 2.0 * np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2])
        a, b, c, d = (r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s
    else:
        s = 2.0 * np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1])
        a, b, c, d = (r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s
    if a < 0:  # NIfTI stores b, c, d and derives a >= 0
        b, c, d = -b, -c, -d
    return qfac, float(b), float(c), float(d)


def _write_nifti(path: Path, volume: Volume, gz: bool) -> None:
    array = np.ascontiguousarray(volume.array)
    if array.dtype.name not in _NIFTI_CODE:
        array = array.astype(np.float32)
    i, j, k = volume.dimensions
    comps = volume.components
    ras_axes = _LPS_FROM_RAS @ np.asarray(volume.direction, float)
    ras_origin = _LPS_FROM_RAS @ np.asarray(volume.origin, float)
    affine = ras_axes @ np.diag(volume.spacing)
    qfac, b, c, d = _rotation_quaternion(ras_axes)
    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    dims = (5 if comps > 1 else 3, i, j, k, 1, comps, 1, 1)
    struct.pack_into("<8h", header, 40, *dims)
    struct.pack_into("<hh", header, 68, 1007 if comps > 1 else 0, 0)  # intent: vector
    struct.pack_into("<hh", header, 70, _NIFTI_CODE[array.dtype.name], array.dtype.itemsize * 8)
    struct.pack_into("<8f", header, 76, qfac, *volume.spacing, 1.0, 1.0, 1.0, 1.0)
    struct.pack_into("<f", header, 108, 352.0)
    struct.pack_into("<2f", header, 112, 1.0, 0.0)
    header[123] = 2 | 8  # xyzt_units: mm, s
    struct.pack_into("<2h", header, 252, 1, 1)  # qform_code, sform_code: scanner
    struct.pack_into("<6f", header, 256, b, c, d, *ras_origin)
    for row in range(3):
        struct.pack_into("<4f", header, 280 + 16 * row, *affine[row], ras_origin[row])
    header[344:348] = b"n+1\x00"
    body = np.moveaxis(array, -1, 0) if comps > 1 else array
    payload = bytes(header) + b"\x00" * 4 + np.ascontiguousarray(body).astype(body.dtype.newbyteorder("<")).tobytes()
    if gz:
        with gzip.GzipFile(path, "wb", compresslevel=1, mtime=0) as out:
            out.write(payload)
    else:
        path.write_bytes(payload)


# --- MetaImage -------------------------------------------------------------------------------
_MET_DTYPE = {"MET_CHAR": "int8", "MET_UCHAR": "uint8", "MET_SHORT": "int16", "MET_USHORT": "uint16",
              "MET_INT": "int32", "MET_UINT": "uint32", "MET_LONG": "int32", "MET_ULONG": "uint32",
              "MET_LONG_LONG": "int64", "MET_ULONG_LONG": "uint64", "MET_FLOAT": "float32", "MET_DOUBLE": "float64"}
_MET_NAME = {"int8": "MET_CHAR", "uint8": "MET_UCHAR", "int16": "MET_SHORT", "uint16": "MET_USHORT",
             "int32": "MET_INT", "uint32": "MET_UINT", "int64": "MET_LONG_LONG", "uint64": "MET_ULONG_LONG",
             "float32": "MET_FLOAT", "float64": "MET_DOUBLE"}


def _read_metaimage(path: Path, limits: Limits) -> Volume:
    with open(path, "rb") as handle:
        fields: dict[str, str] = {}
        read = 0
        while True:
            line = handle.readline(_MAX_HEADER)
            read += len(line)
            if not line or read > _MAX_HEADER:
                raise SlicerCloudError(f"{path.name} is not a MetaImage file (no ElementDataFile line).", status=400)
            key, sep, value = line.decode("latin-1").partition("=")
            if not sep:
                raise SlicerCloudError(f"{path.name} is not a MetaImage file.", status=400)
            fields[key.strip().lower()] = value.strip()
            if key.strip().lower() == "elementdatafile":
                break
        dims = [int(v) for v in fields["dimsize"].split()]
        if len(dims) not in (2, 3):
            raise SlicerCloudError(f"{path.name}: only 2D and 3D MetaImages are supported.", status=400)
        dims = (dims + [1])[:3]
        dtype = np.dtype(_MET_DTYPE.get(fields.get("elementtype", ""), "V0"))
        if dtype.itemsize == 0:
            raise SlicerCloudError(f"{path.name}: unsupported ElementType {fields.get('elementtype')!r}.", status=400)
        if fields.get("binarydatabyteordermsb", fields.get("elementbyteordermsb", "false")).lower() == "true":
            dtype = dtype.newbyteorder(">")
        comps = int(fields.get("elementnumberofchannels", "1"))
        nbytes = _check_size(path.name, (*dims, comps), dtype, limits)
        encoding = "zlib" if fields.get("compresseddata", "false").lower() == "true" else "raw"
        data_file = fields["elementdatafile"]
        if data_file.upper() == "LOCAL":
            data = _read_exact(handle, nbytes, encoding, path.name)
        else:
            if "/" in data_file or "\\" in data_file or data_file.startswith("."):
                raise SlicerCloudError(f"{path.name}: the data file must be a plain name next to the header.", status=400)
            with open(path.parent / data_file, "rb") as source:
                data = _read_exact(source, nbytes, encoding, path.name)
    flat = np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("="), copy=False)
    shape = (dims[2], dims[1], dims[0]) + ((comps,) if comps > 1 else ())
    array = flat.reshape(shape)
    spacing_values = [float(v) for v in fields.get("elementspacing", fields.get("elementsize", "1 1 1")).split()]
    spacing = tuple((spacing_values + [1.0, 1.0, 1.0])[:3])
    origin_values = [float(v) for v in fields.get("offset", fields.get("origin", fields.get("position", "0 0 0"))).split()]
    origin = tuple((origin_values + [0.0, 0.0, 0.0])[:3])
    matrix_values = [float(v) for v in fields.get("transformmatrix", fields.get("rotation", "1 0 0 0 1 0 0 0 1")).split()]
    if len(matrix_values) == 4:
        matrix_values = [matrix_values[0], matrix_values[1], 0, matrix_values[2], matrix_values[3], 0, 0, 0, 1]
    # Each group of three is the direction of one axis (ITK's convention).
    direction = np.array(matrix_values[:9], float).reshape(3, 3).T
    return Volume(np.ascontiguousarray(array), spacing, origin, direction)


def _write_metaimage(path: Path, volume: Volume, compress: bool) -> None:
    array = np.ascontiguousarray(volume.array)
    if array.dtype.name not in _MET_NAME:
        array = array.astype(np.float32)
    data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    if compress:
        data = zlib.compress(data, 1)
    matrix = " ".join(f"{v:.17g}" for v in np.asarray(volume.direction, float).T.ravel())
    header = (
        "ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
        f"CompressedData = {'True' if compress else 'False'}\n"
        + (f"CompressedDataSize = {len(data)}\n" if compress else "")
        + f"TransformMatrix = {matrix}\n"
        "Offset = " + " ".join(f"{v:.17g}" for v in volume.origin) + "\n"
        "AnatomicalOrientation = RAI\n"
        "ElementSpacing = " + " ".join(f"{v:.17g}" for v in volume.spacing) + "\n"
        "DimSize = " + " ".join(str(n) for n in volume.dimensions) + "\n"
        + (f"ElementNumberOfChannels = {volume.components}\n" if volume.components > 1 else "")
        + f"ElementType = {_MET_NAME[array.dtype.name]}\nElementDataFile = LOCAL\n"
    )
    with open(path, "wb") as out:
        out.write(header.encode("ascii"))
        out.write(data)
