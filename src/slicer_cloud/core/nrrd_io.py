"""NRRD files: a writer Slicer reads back exactly, and a header reader that checks an untrusted
file (sizes against limits, truncation, gzip bombs, detached data leaving its folder) before
anything allocates its pixels.

Format reference: the NRRD specification (teem.sourceforge.net/nrrd/format.html). Slicer reads
and writes ``space: left-posterior-superior``, one ``space directions`` vector per spatial axis
and ``none`` for a leading component axis; that is what :func:`write_nrrd` writes.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from slicer_cloud.config import Limits
from slicer_cloud.core import images
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store.atomic import atomic_output

Vector3 = tuple[float, float, float]
Matrix3 = tuple[Vector3, Vector3, Vector3]

#: numpy dtype -> the type name Teem (and so Slicer) writes.
_WRITE_TYPES = {
    "int8": "signed char",
    "uint8": "unsigned char",
    "int16": "short",
    "uint16": "unsigned short",
    "int32": "int",
    "uint32": "unsigned int",
    "int64": "long long",
    "uint64": "unsigned long long",
    "float32": "float",
    "float64": "double",
}

#: every spelling of a type the specification allows -> numpy dtype name.
_READ_TYPES: dict[str, str] = {}
for _dtype, _names in {
    "int8": ("signed char", "int8", "int8_t"),
    "uint8": ("uchar", "unsigned char", "uint8", "uint8_t"),
    "int16": ("short", "short int", "signed short", "signed short int", "int16", "int16_t"),
    "uint16": ("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"),
    "int32": ("int", "signed int", "int32", "int32_t"),
    "uint32": ("uint", "unsigned int", "uint32", "uint32_t"),
    "int64": (
        "longlong", "long long", "long long int", "signed long long", "signed long long int", "int64", "int64_t",
    ),
    "uint64": ("ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t"),
    "float32": ("float",),
    "float64": ("double",),
}.items():
    for _name in _names:
        _READ_TYPES[_name] = _dtype

#: 'space' values -> the sign flips that turn a vector in that space into LPS.
_SPACES = {
    "left-posterior-superior": (1.0, 1.0, 1.0),
    "lps": (1.0, 1.0, 1.0),
    "right-anterior-superior": (-1.0, -1.0, 1.0),
    "ras": (-1.0, -1.0, 1.0),
    "left-anterior-superior": (1.0, -1.0, 1.0),
    "las": (1.0, -1.0, 1.0),
    # Spaces with no anatomical meaning: kept as they are, which is what Slicer does too.
    "scanner-xyz": (1.0, 1.0, 1.0),
    "3d-right-handed": (1.0, 1.0, 1.0),
    "3d-left-handed": (1.0, 1.0, 1.0),
}

#: kinds of an axis that holds positions in space; anything else is a component (or time) axis.
_SPATIAL_KINDS = {"domain", "space"}

#: the longest header we read before deciding the file is not NRRD.
MAX_HEADER_BYTES = 1024 * 1024


# --------------------------------------------------------------------------------------------
# writing


def _format_vector(values: Sequence[float]) -> str:
    return "(" + ",".join(f"{float(v):.17g}" for v in values) + ")"


def nrrd_header(
    array_shape: Sequence[int],
    dtype: np.dtype,
    spacing: Sequence[float],
    origin: Sequence[float],
    direction: Sequence[Sequence[float]] | None = None,
    *,
    gzip: bool = True,
    kinds: Sequence[str] | None = None,
    data_file: str | None = None,
) -> str:
    """The text of an NRRD header for an array of ``array_shape`` (k, j, i) or (k, j, i, c)."""
    shape = tuple(int(n) for n in array_shape)
    if len(shape) not in (3, 4):
        raise ValueError(f"expected an array of shape (k, j, i) or (k, j, i, components), got {shape}")
    type_name = _WRITE_TYPES.get(np.dtype(dtype).name)
    if type_name is None:
        raise ValueError(f"NRRD cannot store {np.dtype(dtype).name} pixels")
    axes = np.asarray(direction if direction is not None else np.eye(3), dtype=float).reshape(3, 3)
    if len(spacing) != 3 or len(origin) != 3:
        raise ValueError("spacing and origin need three values (i, j, k)")
    sizes = [shape[2], shape[1], shape[0]]
    vectors = [_format_vector(axes[:, n] * float(spacing[n])) for n in range(3)]
    axis_kinds = ["domain"] * 3
    if len(shape) == 4:
        sizes.insert(0, shape[3])
        vectors.insert(0, "none")
        axis_kinds.insert(0, "vector")
    if kinds is not None:
        if len(kinds) != len(sizes):
            raise ValueError(f"kinds needs {len(sizes)} entries")
        axis_kinds = list(kinds)
    lines = [
        "NRRD0004",
        "# Complete NRRD file format specification at:",
        "# http://teem.sourceforge.net/nrrd/format.html",
        f"type: {type_name}",
        f"dimension: {len(sizes)}",
        "space: left-posterior-superior",
        "sizes: " + " ".join(str(n) for n in sizes),
        "space directions: " + " ".join(vectors),
        "kinds: " + " ".join(axis_kinds),
        "endian: little",
        f"encoding: {'gzip' if gzip else 'raw'}",
        "space origin: " + _format_vector(origin),
    ]
    if data_file is not None:
        lines.append(f"data file: {data_file}")
    return "\n".join(lines) + "\n"


def write_nrrd(
    path: Path,
    array: np.ndarray,
    spacing: Sequence[float],
    origin: Sequence[float],
    direction: Sequence[Sequence[float]] | None = None,
    *,
    gzip: bool = True,
    kinds: Sequence[str] | None = None,
) -> None:
    """Write ``array`` (shape (k, j, i), or (k, j, i, components)) as one NRRD file, atomically.

    ``spacing`` and ``origin`` are (i, j, k) and LPS millimetres; ``direction`` is 3x3 with the
    i, j, k axes as columns (identity when None). Slices are compressed one at a time, so the
    writer never holds a second copy of a large volume.
    """
    array = np.asarray(array)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    header = nrrd_header(array.shape, array.dtype, spacing, origin, direction, gzip=gzip, kinds=kinds)
    little = array.dtype.newbyteorder("<")
    with atomic_output(Path(path)) as tmp:
        with open(tmp, "wb") as out:
            out.write(header.encode("ascii") + b"\n")
            # gzip container (wbits 31): what Teem, ITK and Slicer expect for 'encoding: gzip'.
            compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if gzip else None
            for k in range(array.shape[0]):
                chunk = np.ascontiguousarray(array[k], dtype=little).tobytes()
                out.write(compressor.compress(chunk) if compressor else chunk)
            if compressor:
                out.write(compressor.flush())


# --------------------------------------------------------------------------------------------
# reading headers of untrusted files


def _split_header(raw: bytes, name: str) -> tuple[list[str], int]:
    """Header lines (without the magic) and the byte offset where attached data starts."""
    lines: list[str] = []
    position = 0
    first = True
    while position < len(raw):
        end = raw.find(b"\n", position)
        if end < 0:
            # a detached header may end without a newline; an attached one never does
            line_bytes, next_position = raw[position:], len(raw)
        else:
            line_bytes, next_position = raw[position:end], end + 1
        line = line_bytes.rstrip(b"\r").decode("latin-1")
        position = next_position
        if first:
            first = False
            continue
        if line == "":
            return lines, position
        lines.append(line)
    return lines, -1


def _fields(lines: list[str], name: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in lines:
        if line.startswith("#"):
            continue
        if ":=" in line and (": " not in line or line.index(":=") < line.index(": ")):
            continue  # key/value pairs: free-form metadata, not geometry
        key, sep, value = line.partition(": ")
        if not sep:
            raise SlicerCloudError(f"{name} has a malformed NRRD header line: {line[:80]!r}.")
        fields[key.strip().lower()] = value.strip()
    return fields


_VECTOR = re.compile(r"\(([^()]*)\)|none", re.IGNORECASE)


def _parse_vector(text: str, name: str, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.strip().strip("()").split(","))
    except ValueError:
        raise SlicerCloudError(f"{name} has an unreadable '{what}': {text[:80]!r}.") from None
    if not all(np.isfinite(values)):
        raise SlicerCloudError(f"{name} has a non-finite value in '{what}': {text[:80]!r}.")
    return values


def _parse_directions(text: str, name: str) -> list[tuple[float, ...] | None]:
    parts = text.split()
    out: list[tuple[float, ...] | None] = []
    for part in parts:
        if part.lower() == "none":
            out.append(None)
        elif _VECTOR.fullmatch(part):
            out.append(_parse_vector(part, name, "space directions"))
        else:
            raise SlicerCloudError(f"{name} has an unreadable 'space directions' entry: {part[:80]!r}.")
    return out


def inspect_nrrd(path: Path, limits: Limits, *, check_data: bool = True) -> images.ImageInfo:
    """Read and check the header of an NRRD (.nrrd, or .nhdr with a detached data file)."""
    name = path.name
    with open(path, "rb") as handle:
        raw = handle.read(MAX_HEADER_BYTES)
    if not re.match(rb"NRRD000[1-5]\r?\n", raw[:10]):
        raise images.not_an_image(path, "it does not start with an NRRD header ('NRRD0004').")
    lines, data_offset = _split_header(raw, name)
    fields = _fields(lines, name)
    detached = "data file" in fields or "datafile" in fields
    if data_offset < 0 and not detached:
        if len(raw) >= MAX_HEADER_BYTES:
            raise SlicerCloudError(f"{name} has an NRRD header longer than {MAX_HEADER_BYTES // 1024} KiB.")
        raise SlicerCloudError(f"{name} is truncated: its NRRD header never ends, so it holds no pixel data.")

    for required in ("type", "dimension", "sizes", "encoding"):
        if required not in fields:
            raise SlicerCloudError(f"{name} is not a valid NRRD file: the header has no '{required}' field.")

    dtype_name = _READ_TYPES.get(fields["type"].lower())
    if dtype_name is None:
        raise SlicerCloudError(
            f"{name} has pixels of type {fields['type']!r}, which Slicer cannot show "
            "(supported: 8 to 64-bit integers, float, double)."
        )
    dtype = np.dtype(dtype_name)

    try:
        dimension = int(fields["dimension"])
        sizes = [int(v) for v in fields["sizes"].split()]
    except ValueError:
        raise SlicerCloudError(f"{name} has unreadable 'dimension' or 'sizes' fields.") from None
    if len(sizes) != dimension:
        raise SlicerCloudError(f"{name} declares {dimension} dimensions but lists {len(sizes)} sizes.")
    if any(n <= 0 for n in sizes):
        raise SlicerCloudError(f"{name} declares a size of zero or less ({fields['sizes']}).")
    if dimension < 2:
        raise SlicerCloudError(f"{name} is a {dimension}-dimensional array, not an image.")
    # Refuse an impossible size before any other arithmetic on it.
    images.check_voxels(name, int(np.prod(sizes, dtype=object)), limits)

    space = fields.get("space", "").lower()
    flips = (1.0, 1.0, 1.0)
    if space:
        if space.endswith("-time") or space not in _SPACES:
            raise SlicerCloudError(f"{name} uses the space {fields['space']!r}, which slicer-cloud cannot place.")
        flips = _SPACES[space]
    elif "space dimension" in fields and fields["space dimension"] != "3":
        raise SlicerCloudError(f"{name} has a {fields['space dimension']}-dimensional space; only 3D is supported.")

    kinds = fields.get("kinds", "").split() or None
    if kinds is not None and len(kinds) != dimension:
        raise SlicerCloudError(f"{name} lists {len(kinds)} kinds for {dimension} axes.")
    directions = _parse_directions(fields["space directions"], name) if "space directions" in fields else None
    if directions is not None and len(directions) != dimension:
        raise SlicerCloudError(f"{name} lists {len(directions)} space directions for {dimension} axes.")

    # Which axes are spatial: the ones with a direction vector, else those whose kind says so.
    if directions is not None:
        spatial = [n for n, d in enumerate(directions) if d is not None]
    elif kinds is not None:
        spatial = [n for n, kind in enumerate(kinds) if kind.lower() in _SPATIAL_KINDS]
    else:
        spatial = list(range(dimension))
    other = [n for n in range(dimension) if n not in spatial]
    if len(spatial) > 3:
        raise SlicerCloudError(f"{name} has {len(spatial)} spatial dimensions; slicer-cloud opens 2D and 3D images.")
    if len(spatial) < 2:
        raise SlicerCloudError(f"{name} has fewer than two spatial axes, so it is not an image.")
    if len(other) > 1 or (other and other != [0]):
        what = ", ".join(kinds[n] for n in other) if kinds else "non-spatial"
        raise SlicerCloudError(
            f"{name} has a {what} axis after its spatial axes (an image sequence or time series); "
            "slicer-cloud opens one volume at a time, with at most a leading component axis."
        )
    components = sizes[0] if other else 1
    spatial_sizes = [sizes[n] for n in spatial]

    # Geometry: spacing and direction from 'space directions', else from 'spacings'.
    if directions is not None:
        vectors = [np.asarray(directions[n], dtype=float) for n in spatial]
        if any(len(v) != 3 for v in vectors):
            raise SlicerCloudError(f"{name} has space directions that are not 3D vectors.")
        vectors = [v * np.asarray(flips) for v in vectors]
    else:
        spacings_text = fields.get("spacings", "").split()
        spacings = [1.0] * dimension
        if spacings_text:
            if len(spacings_text) != dimension:
                raise SlicerCloudError(f"{name} lists {len(spacings_text)} spacings for {dimension} axes.")
            try:
                spacings = [float(v) for v in spacings_text]
            except ValueError:
                raise SlicerCloudError(f"{name} has unreadable 'spacings': {fields['spacings'][:80]!r}.") from None
        vectors = [np.eye(3)[axis] * spacings[n] for axis, n in enumerate(spatial)]
    origin_text = fields.get("space origin")
    origin = np.asarray(_parse_vector(origin_text, name, "space origin") if origin_text else (0.0, 0.0, 0.0))
    if len(origin) != 3:
        raise SlicerCloudError(f"{name} has a 'space origin' that is not a 3D point.")
    origin = origin * np.asarray(flips)
    if len(spatial) == 2:
        spatial_sizes.append(1)
        vectors.append(images.third_axis(vectors[0], vectors[1]))
    spacing, direction = images.spacing_and_direction(name, vectors)

    # Where the pixel data is, and in what encoding.
    encoding = fields["encoding"].lower()
    if encoding in ("gz",):
        encoding = "gzip"
    if encoding not in ("raw", "gzip"):
        raise SlicerCloudError(
            f"{name} stores its pixels with the '{fields['encoding']}' encoding; slicer-cloud reads raw and "
            "gzip NRRD files. Save it again as a compressed (gzip) NRRD."
        )
    endian = fields.get("endian", "little").lower()
    if endian not in ("little", "big"):
        raise SlicerCloudError(f"{name} has an unknown 'endian' value {fields['endian']!r}.")
    data_path = path
    if detached:
        data_path = images.detached_data_path(path, fields.get("data file") or fields["datafile"])
        data_offset = 0
    line_skip = _int_field(fields, "line skip", name)
    byte_skip = _int_field(fields, "byte skip", name)
    if byte_skip < -1:
        raise SlicerCloudError(f"{name} has an invalid 'byte skip' of {byte_skip}.")
    if byte_skip == -1 and encoding != "raw":
        raise SlicerCloudError(f"{name} uses 'byte skip: -1', which only raw encoding allows.")

    info = images.ImageInfo(
        path=path,
        format="nrrd",
        dimensions=(spatial_sizes[0], spatial_sizes[1], spatial_sizes[2]),
        spacing=spacing,
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=direction,
        scalar_type=dtype.name,
        components=components,
        is_segmentation=images.looks_like_segmentation(path, dtype),
    )
    expected = info.voxels * dtype.itemsize
    if check_data or encoding == "raw":
        offset = data_offset + _skip_lines(data_path, data_offset, line_skip, name)
        if encoding == "raw":
            available = data_path.stat().st_size - offset
            needed = expected if byte_skip == -1 else expected + byte_skip
            if available < needed:
                raise images.truncated(name, data_path, needed, max(available, 0))
        else:
            images.check_compressed(name, data_path, offset, expected + byte_skip, limits)
    return info


def _int_field(fields: dict[str, str], key: str, name: str) -> int:
    try:
        return int(fields.get(key, "0"))
    except ValueError:
        raise SlicerCloudError(f"{name} has an unreadable '{key}' value.") from None


def _skip_lines(data_path: Path, offset: int, count: int, name: str) -> int:
    """Bytes taken by ``count`` text lines at ``offset`` of ``data_path`` (NRRD 'line skip')."""
    if count <= 0:
        return 0
    if count > 10_000:
        raise SlicerCloudError(f"{name} asks to skip {count} lines of its data file; at most 10000 are allowed.")
    skipped = 0
    with open(data_path, "rb") as handle:
        handle.seek(offset)
        for _ in range(count):
            line = handle.readline(MAX_HEADER_BYTES)
            if not line.endswith(b"\n"):
                raise SlicerCloudError(f"{name}: its data file ends before the {count} lines it should skip.")
            skipped += len(line)
    return skipped
