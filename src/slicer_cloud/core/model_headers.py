"""Untrusted surface model files: declared sizes checked before a VTK reader allocates.

VTK's model readers trust the counts a header declares (a 150-byte PLY that says "two billion
vertices" makes the reader allocate 24 GB and abort the process). :func:`check_model_file`
adds up the fewest bytes the declared elements need in the file's own encoding and refuses a
file that is smaller than that, so what a reader allocates stays proportional to the file.

* PLY: every ``element NAME COUNT`` with its properties (binary: exact sizes; ASCII: two
  characters per value at least).
* STL: a binary file's triangle count against its size (ASCII STL declares no count).
* VTK legacy: ``POINTS``, cell sections, ``POINT_DATA``/``CELL_DATA`` and field arrays.
* VTP (VTK XML): the point and cell counts of every ``Piece``; a compressed file is held to
  :attr:`~slicer_cloud.config.Limits.max_decompressed_bytes` instead of its size.
* OBJ declares no counts: its reader grows with what it reads, so nothing to check.

Reader workers also run under a memory limit (see :mod:`slicer_cloud.compute.workers`): these
checks give the user a reason, the limit is the backstop.
"""

from __future__ import annotations

import mmap
import re
from pathlib import Path

from slicer_cloud.config import Limits
from slicer_cloud.errors import SlicerCloudError

#: the most header bytes read from a PLY or VTK legacy file before its data starts.
_HEADER_BYTES = 64 * 1024

_PLY_SIZES = {
    "char": 1, "int8": 1, "uchar": 1, "uint8": 1,
    "short": 2, "int16": 2, "ushort": 2, "uint16": 2,
    "int": 4, "int32": 4, "uint": 4, "uint32": 4, "float": 4, "float32": 4,
    "double": 8, "float64": 8,
}  # fmt: skip
_VTK_SIZES = {
    "bit": 1, "char": 1, "signed_char": 1, "unsigned_char": 1, "short": 2, "unsigned_short": 2,
    "int": 4, "unsigned_int": 4, "long": 8, "unsigned_long": 8, "float": 4, "double": 8,
    "vtkidtype": 4, "vtktypeint64": 8, "vtktypeuint64": 8, "vtktypeint32": 4, "vtktypeuint32": 4,
}  # fmt: skip
#: an ASCII value needs a digit and a separator at least.
_ASCII_BYTES_PER_VALUE = 2


def check_model_file(path: Path, limits: Limits | None = None) -> None:
    """Refuse (with the reason) a model whose header declares more than the file can hold."""
    path = Path(path)
    limits = limits or Limits()
    suffix = path.suffix.lower()
    size = path.stat().st_size
    if size == 0:
        raise SlicerCloudError(f"{path.name} is empty.")
    checks = {".ply": _check_ply, ".stl": _check_stl, ".vtk": _check_vtk_legacy, ".vtp": _check_vtp}
    check = checks.get(suffix)
    if check is not None:
        check(path, size, limits)


def _too_large(path: Path, what: str, needed: int, size: int) -> SlicerCloudError:
    return SlicerCloudError(
        f"{path.name} is not a surface model Slicer can open: its header declares {what}, which needs "
        f"at least {needed:,} bytes, but the file has {size:,}.",
        detail=f"declared {needed} bytes, file {size} bytes",
    )


def _not_model(path: Path, reason: str) -> SlicerCloudError:
    return SlicerCloudError(f"{path.name} is not a surface model Slicer can open: {reason}.")


# -- PLY ---------------------------------------------------------------------------------------
def _check_ply(path: Path, size: int, limits: Limits) -> None:
    with open(path, "rb") as handle:
        head = handle.read(_HEADER_BYTES)
    end = head.find(b"end_header")
    if not head.startswith(b"ply") or end < 0:
        raise _not_model(path, "it has no complete PLY header")
    data_start = head.find(b"\n", end)
    data_bytes = size - (data_start + 1 if data_start >= 0 else size)
    binary = None
    elements: list[tuple[str, int, list[int]]] = []  # name, count, fewest bytes per property
    for raw in head[:end].decode("latin-1").splitlines():
        words = raw.split()
        if not words:
            continue
        if words[0] == "format" and len(words) >= 2:
            binary = words[1] != "ascii"
        elif words[0] == "element" and len(words) >= 3:
            try:
                count = int(words[2])
            except ValueError:
                raise _not_model(path, f"the element count {words[2]!r} is not a number") from None
            if count < 0:
                raise _not_model(path, f"the element {words[1]} has a negative count")
            elements.append((words[1], count, []))
        elif words[0] == "property" and elements and len(words) >= 3:
            # "property TYPE NAME" or "property list COUNT_TYPE ITEM_TYPE NAME" (a list may be empty)
            type_name = words[2] if words[1] == "list" else words[1]
            if type_name not in _PLY_SIZES:
                raise _not_model(path, f"the property type {type_name!r} is not a PLY type")
            elements[-1][2].append(_PLY_SIZES[type_name])
    if binary is None:
        raise _not_model(path, "its header has no format line")
    needed = 0
    described = []
    for name, count, properties in elements:
        per_element = sum(properties) if binary else _ASCII_BYTES_PER_VALUE * len(properties)
        needed += count * max(1, per_element)
        described.append(f"{count:,} {name} element{'' if count == 1 else 's'}")
    if needed > data_bytes:
        raise _too_large(path, " and ".join(described), needed, data_bytes)


# -- STL ---------------------------------------------------------------------------------------
def _check_stl(path: Path, size: int, limits: Limits) -> None:
    with open(path, "rb") as handle:
        head = handle.read(84)
    if len(head) < 84:
        if head.lstrip().lower().startswith(b"solid"):
            return  # a tiny ASCII STL
        raise _not_model(path, "it is too short to be an STL file")
    triangles = int.from_bytes(head[80:84], "little")
    needed = 84 + 50 * triangles
    if size == needed:
        return  # a well-formed binary STL (its header may well start with "solid")
    if head.lstrip().lower().startswith(b"solid"):
        return  # ASCII STL: no declared count, read line by line
    if needed > size:
        raise _too_large(path, f"{triangles:,} triangles", needed, size)


# -- VTK legacy --------------------------------------------------------------------------------
_VTK_KEYWORD_LINE = re.compile(
    rb"^[ \t]*(POINTS|VERTICES|LINES|POLYGONS|TRIANGLE_STRIPS|POINT_DATA|CELL_DATA|SCALARS|VECTORS|NORMALS"
    rb"|TENSORS|TEXTURE_COORDINATES|COLOR_SCALARS)[ \t]+([^\r\n]*)$",
    re.MULTILINE,
)
_VTK_FIELD_ARRAY = re.compile(rb"^[ \t]*\S+[ \t]+(\d+)[ \t]+(\d+)[ \t]+([a-z_0-9]+)[ \t]*\r?$", re.MULTILINE)


def _int(word: str, path: Path) -> int:
    try:
        value = int(word)
    except ValueError:
        raise _not_model(path, f"the count {word[:20]!r} is not a number") from None
    if value < 0:
        raise _not_model(path, "it declares a negative count")
    return value


def _check_vtk_legacy(path: Path, size: int, limits: Limits) -> None:
    """Every section that makes the reader allocate, in file order: its fewest bytes."""
    with open(path, "rb") as handle:
        head = handle.read(256)
    lines = head.split(b"\n", 3)
    if len(lines) < 3 or not lines[0].startswith(b"# vtk DataFile"):
        raise _not_model(path, "it has no VTK file header")
    binary = lines[2].strip().upper() == b"BINARY"

    def nbytes(values: int, type_name: str) -> int:
        return values * (_VTK_SIZES.get(type_name.lower(), 1) if binary else _ASCII_BYTES_PER_VALUE)

    needed = 0
    described: list[str] = []
    attribute_count = 0  # the tuples of the current POINT_DATA / CELL_DATA block
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for match in _VTK_KEYWORD_LINE.finditer(data):
            keyword = match.group(1).decode()
            words = match.group(2).decode("latin-1").split() or ["0"]
            if keyword == "POINTS":
                count = _int(words[0], path)
                needed += nbytes(3 * count, words[1] if len(words) > 1 else "float")
                described.append(f"{count:,} points")
            elif keyword in ("VERTICES", "LINES", "POLYGONS", "TRIANGLE_STRIPS"):
                # "POLYGONS cells size": size integers (before format 5), or offsets and
                # connectivity of 4 or 8 bytes each (format 5): size values at least either way
                count = _int(words[0], path)
                values = _int(words[1], path) if len(words) > 1 else count
                needed += nbytes(values, "int")
                described.append(f"{count:,} {keyword.lower().replace('_', ' ')}")
            elif keyword in ("POINT_DATA", "CELL_DATA"):
                attribute_count = _int(words[0], path)
            elif keyword == "SCALARS":  # SCALARS name type [components]
                components = _int(words[2], path) if len(words) > 2 else 1
                needed += nbytes(attribute_count * components, words[1] if len(words) > 1 else "float")
            elif keyword in ("VECTORS", "NORMALS", "TENSORS"):  # NAME name type
                per_tuple = 9 if keyword == "TENSORS" else 3
                needed += nbytes(attribute_count * per_tuple, words[1] if len(words) > 1 else "float")
            elif keyword == "TEXTURE_COORDINATES":  # TEXTURE_COORDINATES name dimension type
                dimension = _int(words[1], path) if len(words) > 1 else 1
                needed += nbytes(attribute_count * dimension, words[2] if len(words) > 2 else "float")
            elif keyword == "COLOR_SCALARS":  # COLOR_SCALARS name components (bytes when binary)
                components = _int(words[1], path) if len(words) > 1 else 1
                needed += nbytes(attribute_count * components, "unsigned_char")
        for match in _VTK_FIELD_ARRAY.finditer(data):  # FIELD arrays: name components tuples type
            type_name = match.group(3).decode().lower()
            if type_name in _VTK_SIZES:
                needed += nbytes(int(match.group(1)) * int(match.group(2)), type_name)
    if needed > size:
        raise _too_large(path, ", ".join(described[:4]) or "its arrays", needed, size)


# -- VTP (VTK XML poly data) -------------------------------------------------------------------
_VTP_PIECE = re.compile(rb"<Piece\b([^>]*)>")
_VTP_COUNT = re.compile(rb'Number\s*Of(Points|Verts|Lines|Strips|Polys)\s*=\s*"\s*(-?\d+)\s*"')


def _check_vtp(path: Path, size: int, limits: Limits) -> None:
    points = cells = 0
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        head = data[:_HEADER_BYTES]
        if b"<VTKFile" not in head:
            raise _not_model(path, "it has no VTKFile element")
        compressed = re.search(rb"<VTKFile\b[^>]*\bcompressor\s*=", head) is not None
        for piece in _VTP_PIECE.finditer(data):
            for name, value in _VTP_COUNT.findall(piece.group(1)):
                count = int(value)
                if count < 0:
                    raise _not_model(path, "a piece declares a negative count")
                if name == b"Points":
                    points += count
                else:
                    cells += count
    # Fewest values: three coordinates per point, one offset and one index per cell; a value
    # takes a byte at least, whatever its encoding (ASCII, base64 or raw).
    needed = 3 * points + 2 * cells
    what = f"{points:,} points and {cells:,} cells"
    if compressed:
        if needed * 4 > limits.max_decompressed_bytes:
            raise SlicerCloudError(
                f"{path.name} is not a surface model Slicer can open: its header declares {what}, "
                f"more than the limit of {limits.max_decompressed_bytes / 1024**2:.0f} MiB once decompressed.",
            )
    elif needed > size:
        raise _too_large(path, what, needed, size)
