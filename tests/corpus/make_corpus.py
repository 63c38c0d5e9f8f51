"""Malformed (and a few valid) image files for the reader tests, generated into a folder.

Nothing large is committed: every case is built from a few lines of code here, into a
temporary folder, by the tests or by hand::

    python tests/corpus/make_corpus.py OUTPUT_FOLDER

Each :class:`Case` names the file (or folder) to inspect, the HTTP status the readers must answer
and a fragment of the message. README.md next to this file says what each case exercises.
Small writers for NIfTI-1/2 and MetaImage live here too, so tests can make valid files with any
geometry (the package itself only writes NRRD).
"""

from __future__ import annotations

import gzip as gzip_module
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SMALL = (8, 16, 16)  # (k, j, i): every case is 16x16x8 voxels unless it says otherwise
BOMB_BYTES = 64 * 1024 * 1024  # what a bomb expands to; its compressed form is about 64 KiB


def small_array(dtype: str = "int16") -> np.ndarray:
    return (np.arange(np.prod(SMALL)) % 251).astype(dtype).reshape(SMALL)


def bomb_gzip() -> bytes:
    """A gzip stream of BOMB_BYTES zeros, compressed without ever holding them."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1024 * 1024)
    parts = [compressor.compress(zeros) for _ in range(BOMB_BYTES // len(zeros))]
    parts.append(compressor.flush())
    return b"".join(parts)


# --------------------------------------------------------------------------------------------
# writers


def nrrd_text(
    sizes: str = "16 16 8",
    *,
    type_: str = "short",
    dimension: int | None = None,
    encoding: str = "raw",
    extra: str = "space: left-posterior-superior\nspace directions: (1,0,0) (0,1,0) (0,0,2)\nspace origin: (0,0,0)\n",
    data_file: str | None = None,
) -> str:
    dim = dimension if dimension is not None else len(sizes.split())
    text = f"NRRD0004\ntype: {type_}\ndimension: {dim}\nsizes: {sizes}\nendian: little\nencoding: {encoding}\n{extra}"
    if data_file is not None:
        text += f"data file: {data_file}\n"
    return text


def write_nrrd_case(path: Path, header: str, data: bytes) -> Path:
    path.write_bytes(header.encode() + b"\n" + data)
    return path


def nifti_bytes(
    array: np.ndarray,
    *,
    version: int = 1,
    endian: str = "<",
    datatype: int | None = None,
    bitpix: int | None = None,
    dim: list[int] | None = None,
    pixdim: list[float] | None = None,
    qform: tuple[int, tuple[float, float, float], tuple[float, float, float], float] | None = None,
    sform: tuple[int, np.ndarray] | None = None,
    magic: bytes | None = None,
) -> bytes:
    """A single-file NIfTI image of ``array`` (k, j, i); (k, j, i, 3) uint8 is written as RGB24.

    ``qform``: (code, (b, c, d) quaternion, (x, y, z) offset, qfac). ``sform``: (code, 3x4 RAS
    matrix). Geometry in NIfTI's own RAS space.
    """
    codes = {"uint8": 2, "int16": 4, "int32": 8, "float32": 16, "float64": 64, "int8": 256, "uint16": 512}
    rgb = array.ndim == 4 and array.dtype == np.uint8 and array.shape[3] == 3
    if datatype is None:
        datatype = 128 if rgb else codes[array.dtype.name]
    components = 3 if rgb else 1
    if bitpix is None:
        bitpix = array.dtype.itemsize * 8 * components
    if dim is None:
        k, j, i = array.shape[:3]
        dim = [3, i, j, k, 1, 1, 1, 1]
    if pixdim is None:
        pixdim = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    q_code, (b, c, d), offset, qfac = qform if qform else (0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 1.0)
    pixdim = [qfac] + list(pixdim[1:])
    s_code, srow = sform if sform else (0, np.zeros((3, 4)))
    srow = np.asarray(srow, dtype=float).reshape(12)
    e = endian
    if version == 1:
        head = bytearray(352)
        struct.pack_into(e + "i", head, 0, 348)
        struct.pack_into(e + "8h", head, 40, *dim)
        struct.pack_into(e + "hh", head, 70, datatype, bitpix)
        struct.pack_into(e + "8f", head, 76, *pixdim)
        struct.pack_into(e + "fff", head, 108, 352.0, 1.0, 0.0)  # vox_offset, scl_slope, scl_inter
        struct.pack_into(e + "B", head, 123, 10)  # mm and seconds
        struct.pack_into(e + "hh", head, 252, q_code, s_code)
        struct.pack_into(e + "6f", head, 256, b, c, d, *offset)
        struct.pack_into(e + "12f", head, 280, *srow)
        head[344:348] = magic if magic is not None else b"n+1\0"
    else:
        head = bytearray(544)
        struct.pack_into(e + "i", head, 0, 540)
        head[4:12] = magic if magic is not None else b"n+2\0\r\n\x1a\n"
        struct.pack_into(e + "hh", head, 12, datatype, bitpix)
        struct.pack_into(e + "8q", head, 16, *dim)
        struct.pack_into(e + "8d", head, 104, *pixdim)
        struct.pack_into(e + "q", head, 168, 544)
        struct.pack_into(e + "dd", head, 176, 1.0, 0.0)
        struct.pack_into(e + "ii", head, 344, q_code, s_code)
        struct.pack_into(e + "6d", head, 352, b, c, d, *offset)
        struct.pack_into(e + "12d", head, 400, *srow)
        struct.pack_into(e + "i", head, 500, 10)
    data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder(e)).tobytes()
    return bytes(head) + data


def metaimage_text(
    *,
    dims: str = "16 16 8",
    element_type: str = "MET_SHORT",
    spacing: str = "1 1 2",
    offset: str = "0 0 0",
    matrix: str = "1 0 0 0 1 0 0 0 1",
    data_file: str = "LOCAL",
    extra: str = "",
) -> str:
    ndims = len(dims.split())
    return (
        f"ObjectType = Image\nNDims = {ndims}\nBinaryData = True\nBinaryDataByteOrderMSB = False\n{extra}"
        f"TransformMatrix = {matrix}\nOffset = {offset}\nElementSpacing = {spacing}\nDimSize = {dims}\n"
        f"ElementType = {element_type}\nElementDataFile = {data_file}\n"
    )


def write_dicom_folder(folder: Path, shape=(16, 12, 6), spacing=(1.0, 1.0, 2.5), **kwargs) -> list[Path]:
    from slicer_cloud.core.phantom import make_phantom, write_dicom_series

    return write_dicom_series(folder, make_phantom(shape, spacing), **kwargs)


def _edit_dicom(path: Path, **changes) -> None:
    import pydicom

    ds = pydicom.dcmread(path)
    for key, value in changes.items():
        setattr(ds, key, value)
    ds.save_as(path)


# --------------------------------------------------------------------------------------------
# the cases


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Path]  # makes the case inside the folder it gets; returns what to inspect
    status: int
    message: str  # a fragment the error message must contain (case-insensitive)
    limits: dict = field(default_factory=dict)  # Limits overrides for this case
    reader: str = "inspect"  # "inspect" (inspect_image) or "read_series" (dicom.read_series)


def _raw_nrrd(path: Path, header: str, data: bytes | None = None) -> Path:
    return write_nrrd_case(path, header, small_array().tobytes() if data is None else data)


def _gzip_nrrd(path: Path, header: str, data: bytes) -> Path:
    return write_nrrd_case(path, header, data)


def _text_file(dir_: Path) -> Path:
    path = dir_ / "notes.txt"
    path.write_text("just some text\n")
    return path


def _fake_nrrd(dir_: Path) -> Path:
    path = dir_ / "fake.nrrd"
    path.write_bytes(b"<html>this is a web page saved as .nrrd</html>\n")
    return path


def _nrrd_truncated_raw(dir_: Path) -> Path:
    return _raw_nrrd(dir_ / "truncated_raw.nrrd", nrrd_text(), small_array().tobytes()[:1000])


def _nrrd_truncated_gzip(dir_: Path) -> Path:
    data = gzip_module.compress(small_array().tobytes())
    return _gzip_nrrd(dir_ / "truncated_gzip.nrrd", nrrd_text(encoding="gzip"), data[: len(data) // 2])


def _nrrd_corrupt_gzip(dir_: Path) -> Path:
    data = bytearray(gzip_module.compress(small_array().tobytes()))
    data[20:40] = b"\xff" * 20
    return _gzip_nrrd(dir_ / "corrupt_gzip.nrrd", nrrd_text(encoding="gzip"), bytes(data))


def _nrrd_gzip_bomb(dir_: Path) -> Path:
    return _gzip_nrrd(dir_ / "gzip_bomb.nrrd", nrrd_text(encoding="gzip"), bomb_gzip())


def _nrrd_bomb_over_limit(dir_: Path) -> Path:
    # declares 64 MiB, which is past the 16 MiB decompression limit this case runs with
    header = nrrd_text("1024 1024 64", type_="unsigned char", encoding="gzip")
    return _gzip_nrrd(dir_ / "bomb_over_limit.nrrd", header, bomb_gzip())


def _nrrd_huge(dir_: Path) -> Path:
    return _raw_nrrd(dir_ / "huge.nrrd", nrrd_text("100000 100000 100000"), b"")


def _nrrd_zero(dir_: Path) -> Path:
    return _raw_nrrd(dir_ / "zero_size.nrrd", nrrd_text("16 0 8"), b"")


def _nrrd_negative(dir_: Path) -> Path:
    return _raw_nrrd(dir_ / "negative_size.nrrd", nrrd_text("16 -16 8"), b"")


def _nrrd_sizes_mismatch(dir_: Path) -> Path:
    return _raw_nrrd(dir_ / "sizes_mismatch.nrrd", nrrd_text("16 16", dimension=3))


def _nrrd_4d_spatial(dir_: Path) -> Path:
    header = nrrd_text("4 4 4 4", extra="kinds: domain domain domain domain\n")
    return _raw_nrrd(dir_ / "four_spatial.nrrd", header, bytes(4**4 * 2))


def _nrrd_time_series(dir_: Path) -> Path:
    header = nrrd_text(
        "16 16 8 3",
        extra="space: left-posterior-superior\nspace directions: (1,0,0) (0,1,0) (0,0,2) none\n"
        "kinds: domain domain domain list\n",
    )
    return _raw_nrrd(dir_ / "time_series.nrrd", header, small_array().tobytes() * 3)


def _nrrd_zero_spacing(dir_: Path) -> Path:
    header = nrrd_text(extra="space: left-posterior-superior\nspace directions: (1,0,0) (0,0,0) (0,0,2)\n")
    return _raw_nrrd(dir_ / "zero_spacing.nrrd", header)


def _nrrd_nan_spacing(dir_: Path) -> Path:
    return _raw_nrrd(dir_ / "nan_spacing.nrrd", nrrd_text(extra="spacings: 1 nan 2\n"))


def _nrrd_parallel_axes(dir_: Path) -> Path:
    header = nrrd_text(extra="space: left-posterior-superior\nspace directions: (1,0,0) (2,0,0) (0,0,2)\n")
    return _raw_nrrd(dir_ / "parallel_axes.nrrd", header)


def _nrrd_unknown_type(dir_: Path) -> Path:
    return _raw_nrrd(dir_ / "unknown_type.nrrd", nrrd_text(type_="quaternion"))


def _nrrd_block_type(dir_: Path) -> Path:
    return _raw_nrrd(dir_ / "block_type.nrrd", nrrd_text(type_="block"))


def _nrrd_bzip2(dir_: Path) -> Path:
    return _raw_nrrd(dir_ / "bzip2.nrrd", nrrd_text(encoding="bzip2"), b"BZh9")


def _nrrd_unterminated(dir_: Path) -> Path:
    path = dir_ / "unterminated.nrrd"
    path.write_text(nrrd_text().rstrip("\n"))
    return path


def _nhdr(dir_: Path, name: str, data_file: str) -> Path:
    path = dir_ / name
    path.write_text(nrrd_text(data_file=data_file))
    return path


def _nhdr_escape(dir_: Path) -> Path:
    (dir_ / "secret.raw").write_bytes(small_array().tobytes())
    inner = dir_ / "inner"
    inner.mkdir()
    return _nhdr(inner, "escape.nhdr", "../secret.raw")


def _nhdr_absolute(dir_: Path) -> Path:
    return _nhdr(dir_, "absolute.nhdr", "/etc/passwd")


def _nhdr_symlink_escape(dir_: Path) -> Path:
    outside = dir_ / "outside"
    outside.mkdir()
    (outside / "data.raw").write_bytes(small_array().tobytes())
    inner = dir_ / "linked"
    inner.mkdir()
    (inner / "data.raw").symlink_to(outside / "data.raw")
    return _nhdr(inner, "symlink.nhdr", "data.raw")


def _nhdr_missing(dir_: Path) -> Path:
    return _nhdr(dir_, "missing_data.nhdr", "missing.raw")


def _nhdr_multi_file(dir_: Path) -> Path:
    return _nhdr(dir_, "multi_file.nhdr", "slice%03d.raw 0 7 1")


def _nhdr_truncated(dir_: Path) -> Path:
    (dir_ / "short.raw").write_bytes(small_array().tobytes()[:-2])
    return _nhdr(dir_, "truncated_detached.nhdr", "short.raw")


def _nifti(path: Path, data: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip_module.compress(data) if gz else data)
    return path


def _nifti_huge(dir_: Path) -> Path:
    data = nifti_bytes(small_array(), dim=[3, 32767, 32767, 32767, 1, 1, 1, 1])
    return _nifti(dir_ / "huge.nii", data)


def _nifti_huge_v2(dir_: Path) -> Path:
    data = nifti_bytes(small_array(), version=2, dim=[3, 2**40, 2**40, 2**40, 1, 1, 1, 1])
    return _nifti(dir_ / "huge_v2.nii", data)


def _nifti_truncated(dir_: Path) -> Path:
    return _nifti(dir_ / "truncated.nii", nifti_bytes(small_array())[:-100])


def _nifti_gz_truncated(dir_: Path) -> Path:
    full = gzip_module.compress(nifti_bytes(small_array()))
    path = dir_ / "truncated.nii.gz"
    path.write_bytes(full[: len(full) - 40])
    return path


def _nifti_gz_bomb(dir_: Path) -> Path:
    header = nifti_bytes(small_array())[:352]
    path = dir_ / "bomb.nii.gz"
    path.write_bytes(gzip_module.compress(header) + bomb_gzip())  # two gzip members
    return path


def _nifti_zero(dir_: Path) -> Path:
    return _nifti(dir_ / "zero_dim.nii", nifti_bytes(small_array(), dim=[3, 16, 0, 8, 1, 1, 1, 1]))


def _nifti_negative(dir_: Path) -> Path:
    return _nifti(dir_ / "negative_dim.nii", nifti_bytes(small_array(), dim=[3, 16, -16, 8, 1, 1, 1, 1]))


def _nifti_time(dir_: Path) -> Path:
    data = nifti_bytes(np.concatenate([small_array()] * 3), dim=[4, 16, 16, 8, 3, 1, 1, 1])
    return _nifti(dir_ / "time_series.nii", data)


def _nifti_complex(dir_: Path) -> Path:
    return _nifti(dir_ / "complex.nii", nifti_bytes(small_array("float64"), datatype=32, bitpix=64))


def _nifti_unknown_type(dir_: Path) -> Path:
    return _nifti(dir_ / "unknown_type.nii", nifti_bytes(small_array(), datatype=99))


def _nifti_bitpix(dir_: Path) -> Path:
    return _nifti(dir_ / "bitpix_mismatch.nii", nifti_bytes(small_array(), bitpix=8))


def _nifti_zero_pixdim(dir_: Path) -> Path:
    return _nifti(dir_ / "zero_pixdim.nii", nifti_bytes(small_array(), pixdim=[1, 1, 0, 1, 0, 0, 0, 0]))


def _nifti_nan_pixdim(dir_: Path) -> Path:
    return _nifti(dir_ / "nan_pixdim.nii", nifti_bytes(small_array(), pixdim=[1, 1, float("nan"), 1, 0, 0, 0, 0]))


def _nifti_bad_magic(dir_: Path) -> Path:
    return _nifti(dir_ / "bad_magic.nii", nifti_bytes(small_array(), magic=b"xyz\0"))


def _nifti_pair(dir_: Path) -> Path:
    return _nifti(dir_ / "pair_header.nii", nifti_bytes(small_array(), magic=b"ni1\0"))


def _nifti_not_nifti(dir_: Path) -> Path:
    return _nifti(dir_ / "random.nii", bytes(range(256)) * 4)


def _nifti_gz_not_gzip(dir_: Path) -> Path:
    return _nifti(dir_ / "plain.nii.gz", nifti_bytes(small_array()))


def _mha(path: Path, header: str, data: bytes) -> Path:
    path.write_bytes(header.encode() + data)
    return path


def _mha_truncated(dir_: Path) -> Path:
    return _mha(dir_ / "truncated.mha", metaimage_text(), small_array().tobytes()[:-1])


def _mha_bomb(dir_: Path) -> Path:
    header = metaimage_text(extra="CompressedData = True\n")
    return _mha(dir_ / "bomb.mha", header, zlib.compress(bytes(BOMB_BYTES // 16), 9))


def _mha_huge(dir_: Path) -> Path:
    return _mha(dir_ / "huge.mha", metaimage_text(dims="70000 70000 70000"), b"")


def _mha_zero(dir_: Path) -> Path:
    return _mha(dir_ / "zero_dim.mha", metaimage_text(dims="16 0 8"), b"")


def _mha_4d(dir_: Path) -> Path:
    header = metaimage_text(dims="4 4 4 4", spacing="1 1 1 1", offset="0 0 0 0", matrix=" ".join(["1"] * 16))
    return _mha(dir_ / "four_d.mha", header, bytes(512))


def _mha_unknown_type(dir_: Path) -> Path:
    return _mha(dir_ / "unknown_type.mha", metaimage_text(element_type="MET_STRING"), small_array().tobytes())


def _mha_bad_spacing(dir_: Path) -> Path:
    return _mha(dir_ / "bad_spacing.mha", metaimage_text(spacing="1 0 2"), small_array().tobytes())


def _mha_garbage(dir_: Path) -> Path:
    return _mha(dir_ / "garbage.mha", "", bytes(range(256)) * 8)


def _mhd_escape(dir_: Path) -> Path:
    (dir_ / "outside.raw").write_bytes(small_array().tobytes())
    inner = dir_ / "mhd"
    inner.mkdir()
    return _mha(inner / "escape.mhd", metaimage_text(data_file="../outside.raw"), b"")


def _mhd_list(dir_: Path) -> Path:
    return _mha(dir_ / "list.mhd", metaimage_text(data_file="LIST"), b"")


def _mhd_truncated(dir_: Path) -> Path:
    (dir_ / "short.raw").write_bytes(small_array().tobytes()[:100])
    return _mha(dir_ / "truncated.mhd", metaimage_text(data_file="short.raw"), b"")


def _dicom_empty(dir_: Path) -> Path:
    folder = dir_ / "no_dicom"
    folder.mkdir()
    (folder / "readme.txt").write_text("no images here")
    (folder / "fake.dcm").write_bytes(b"\0" * 200)
    return folder


def _dicom_two_series(dir_: Path) -> Path:
    folder = dir_ / "two_series"
    write_dicom_folder(folder / "a", description="Axial 2.5mm")
    write_dicom_folder(folder / "b", shape=(16, 12, 3), description="Scout")
    return folder


def _dicom_missing_slice(dir_: Path) -> Path:
    folder = dir_ / "missing_slice"
    files = write_dicom_folder(folder)
    files[3].unlink()
    return folder


def _dicom_mixed_size(dir_: Path) -> Path:
    folder = dir_ / "mixed_size"
    files = write_dicom_folder(folder)
    import pydicom

    ds = pydicom.dcmread(files[2])
    ds.Rows, ds.Columns = 6, 8
    ds.PixelData = bytes(6 * 8 * 2)
    ds.save_as(files[2])
    return folder


def _dicom_mixed_orientation(dir_: Path) -> Path:
    folder = dir_ / "mixed_orientation"
    files = write_dicom_folder(folder)
    _edit_dicom(files[0], ImageOrientationPatient=["1", "0", "0", "0", "0", "-1"])
    return folder


def _dicom_duplicate_positions(dir_: Path) -> Path:
    folder = dir_ / "duplicates"
    files = write_dicom_folder(folder)
    import pydicom

    position = pydicom.dcmread(files[1]).ImagePositionPatient
    _edit_dicom(files[2], ImagePositionPatient=list(position))
    return folder


def _dicom_multiframe(dir_: Path) -> Path:
    folder = dir_ / "multiframe"
    files = write_dicom_folder(folder, shape=(16, 12, 1))
    _edit_dicom(files[0], NumberOfFrames=4)
    return folder


def _dicom_jpeg_lossless(dir_: Path) -> Path:
    folder = dir_ / "jpeg_lossless"
    files = write_dicom_folder(folder, shape=(16, 12, 2))
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLosslessSV1

    for path in files:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
        ds.PixelData = encapsulate([b"\xff\xd8\xff\xc3" + bytes(60) + b"\xff\xd9"])
        ds["PixelData"].VR = "OB"
        ds.save_as(path, enforce_file_format=True)
    return folder


def _dicom_unknown_syntax(dir_: Path) -> Path:
    folder = dir_ / "unknown_syntax"
    files = write_dicom_folder(folder, shape=(16, 12, 2))
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import MPEG2MPML

    for path in files:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = MPEG2MPML
        ds.PixelData = encapsulate([bytes(64)])
        ds["PixelData"].VR = "OB"
        ds.save_as(path, enforce_file_format=True)
    return folder


def _dicom_too_many_files(dir_: Path) -> Path:
    folder = dir_ / "many_files"
    write_dicom_folder(folder, shape=(8, 8, 12))
    return folder


def _dicom_over_voxels(dir_: Path) -> Path:
    folder = dir_ / "over_voxels"
    write_dicom_folder(folder)
    return folder


def _dicom_corrupt_pixels(dir_: Path) -> Path:
    folder = dir_ / "corrupt_pixels"
    files = write_dicom_folder(folder)
    import pydicom

    ds = pydicom.dcmread(files[4])
    ds.PixelData = ds.PixelData[:50]
    ds.save_as(files[4])
    return folder


def _one_dicom_file(dir_: Path, name: str) -> Path:
    folder = dir_ / "series"
    source = write_dicom_folder(folder, shape=(16, 12, 1))[0]
    target = dir_ / name
    source.rename(target)
    folder.rmdir()
    return target


def _dicom_short_pixels_file(dir_: Path) -> Path:
    import pydicom

    path = _one_dicom_file(dir_, "short_pixels.dcm")
    ds = pydicom.dcmread(path)
    ds.PixelData = ds.PixelData[:100]  # 16x12 pixels of 16 bits declare 384 bytes
    ds.save_as(path)
    return path


def _dicom_no_pixel_data(dir_: Path) -> Path:
    import pydicom

    path = _one_dicom_file(dir_, "no_pixels.dcm")
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    return path


#: how deep the hostile file nests sequences; pydicom's recursive parser gives up near 200
DEEP_SEQUENCES = 400


def _dicom_deep_sequences(dir_: Path) -> Path:
    """A ContentSequence nested DEEP_SEQUENCES levels, spliced in as bytes (pydicom cannot write it)."""
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    path = _one_dicom_file(dir_, "deep_sequences.dcm")
    ds = pydicom.dcmread(path)
    ds.ContentSequence = Sequence([Dataset()])  # a placeholder: one empty item
    ds.save_as(path)
    tag = b"\x40\x00\x30\xa7SQ\x00\x00"  # (0040,A730) SQ, explicit VR little endian
    item, item_end, sequence_end = b"\xfe\xff\x00\xe0", b"\xfe\xff\x0d\xe0\0\0\0\0", b"\xfe\xff\xdd\xe0\0\0\0\0"
    undefined = b"\xff\xff\xff\xff"
    placeholder = tag + (8).to_bytes(4, "little") + item + bytes(4)
    raw = path.read_bytes()
    assert raw.count(placeholder) == 1, "the placeholder sequence was not written as expected"
    nested = (tag + undefined + item + undefined) * DEEP_SEQUENCES + (item_end + sequence_end) * DEEP_SEQUENCES
    path.write_bytes(raw.replace(placeholder, nested))
    return path


def _dicom_deep_sequences_folder(dir_: Path) -> Path:
    folder = dir_ / "deep_in_series"
    write_dicom_folder(folder, shape=(16, 12, 3))
    _dicom_deep_sequences(folder)
    return folder


def _nifti_nan_vox_offset(dir_: Path) -> Path:
    data = bytearray(nifti_bytes(small_array()))
    struct.pack_into("<f", data, 108, float("nan"))
    return _nifti(dir_ / "nan_vox_offset.nii", bytes(data))


def _nifti_nan_quatern(dir_: Path) -> Path:
    data = bytearray(nifti_bytes(small_array(), qform=(1, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 1.0)))
    struct.pack_into("<f", data, 256, float("nan"))
    return _nifti(dir_ / "nan_quatern.nii", bytes(data))


def _nifti_inf_srow(dir_: Path) -> Path:
    srow = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, float("inf")]])
    return _nifti(dir_ / "inf_srow.nii", nifti_bytes(small_array(), sform=(1, srow)))


def _fuzz_finds():
    import importlib.util

    spec = importlib.util.spec_from_file_location("slicer_cloud_fuzz_finds", Path(__file__).parent / "fuzz_finds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fuzz_find(name: str) -> Callable[[Path], Path]:
    def build(dir_: Path) -> Path:
        finds = _fuzz_finds()
        path = dir_ / finds.FINDS[name][0]
        path.write_bytes(finds.find_bytes(name))
        return path

    return build


CASES: list[Case] = [
    Case("text_file", _text_file, 400, "is not an image Slicer can open"),
    Case("nrrd_not_nrrd", _fake_nrrd, 400, "does not start with an NRRD header"),
    Case("nrrd_truncated_raw", _nrrd_truncated_raw, 400, "truncated"),
    Case("nrrd_truncated_gzip", _nrrd_truncated_gzip, 400, "truncated"),
    Case("nrrd_corrupt_gzip", _nrrd_corrupt_gzip, 400, "corrupt compressed"),
    Case("nrrd_gzip_bomb", _nrrd_gzip_bomb, 400, "more compressed pixel data than its header declares"),
    Case("nrrd_bomb_over_limit", _nrrd_bomb_over_limit, 413, "would expand to", {"max_decompressed_bytes": 16 * 2**20}),
    Case("nrrd_huge", _nrrd_huge, 413, "voxels, more than the limit"),
    Case("nrrd_zero_size", _nrrd_zero, 400, "size of zero or less"),
    Case("nrrd_negative_size", _nrrd_negative, 400, "size of zero or less"),
    Case("nrrd_sizes_mismatch", _nrrd_sizes_mismatch, 400, "declares 3 dimensions but lists 2"),
    Case("nrrd_four_spatial_axes", _nrrd_4d_spatial, 400, "4 spatial dimensions"),
    Case("nrrd_time_series", _nrrd_time_series, 400, "after its spatial axes"),
    Case("nrrd_zero_spacing", _nrrd_zero_spacing, 400, "spacing"),
    Case("nrrd_nan_spacing", _nrrd_nan_spacing, 400, "spacing"),
    Case("nrrd_parallel_axes", _nrrd_parallel_axes, 400, "parallel"),
    Case("nrrd_unknown_type", _nrrd_unknown_type, 400, "'quaternion'"),
    Case("nrrd_block_type", _nrrd_block_type, 400, "'block'"),
    Case("nrrd_bzip2", _nrrd_bzip2, 400, "'bzip2' encoding"),
    Case("nrrd_unterminated_header", _nrrd_unterminated, 400, "header never ends"),
    Case("nhdr_escape", _nhdr_escape, 403, "outside its own folder"),
    Case("nhdr_absolute", _nhdr_absolute, 403, "outside its own folder"),
    Case("nhdr_symlink_escape", _nhdr_symlink_escape, 403, "outside its own folder"),
    Case("nhdr_missing_data", _nhdr_missing, 400, "is missing"),
    Case("nhdr_multi_file", _nhdr_multi_file, 400, "several data files"),
    Case("nhdr_truncated", _nhdr_truncated, 400, "truncated"),
    Case("nifti_huge", _nifti_huge, 413, "voxels, more than the limit"),
    Case("nifti2_huge", _nifti_huge_v2, 413, "voxels, more than the limit"),
    Case("nifti_truncated", _nifti_truncated, 400, "truncated"),
    Case("nifti_gz_truncated", _nifti_gz_truncated, 400, "truncated"),
    Case("nifti_gz_bomb", _nifti_gz_bomb, 400, "more compressed pixel data than its header declares"),
    Case("nifti_zero_dim", _nifti_zero, 400, "size of zero or less"),
    Case("nifti_negative_dim", _nifti_negative, 400, "size of zero or less"),
    Case("nifti_time_series", _nifti_time, 400, "4D time series"),
    Case("nifti_complex", _nifti_complex, 400, "complex64"),
    Case("nifti_unknown_type", _nifti_unknown_type, 400, "unknown NIfTI data type"),
    Case("nifti_bitpix_mismatch", _nifti_bitpix, 400, "inconsistent header"),
    Case("nifti_zero_pixdim", _nifti_zero_pixdim, 400, "spacing"),
    Case("nifti_nan_pixdim", _nifti_nan_pixdim, 400, "spacing"),
    Case("nifti_bad_magic", _nifti_bad_magic, 400, "no valid magic"),
    Case("nifti_pair_header", _nifti_pair, 400, ".hdr/.img pair"),
    Case("nifti_random_bytes", _nifti_not_nifti, 400, "not a NIfTI-1 or NIfTI-2 header"),
    Case("nifti_gz_not_gzip", _nifti_gz_not_gzip, 400, "not gzip-compressed"),
    Case("mha_truncated", _mha_truncated, 400, "truncated"),
    Case("mha_zlib_bomb", _mha_bomb, 400, "more compressed pixel data than its header declares"),
    Case("mha_huge", _mha_huge, 413, "voxels, more than the limit"),
    Case("mha_zero_dim", _mha_zero, 400, "size of zero or less"),
    Case("mha_four_d", _mha_4d, 400, "4 dimensions"),
    Case("mha_unknown_type", _mha_unknown_type, 400, "'MET_STRING'"),
    Case("mha_bad_spacing", _mha_bad_spacing, 400, "spacing"),
    Case("mha_garbage", _mha_garbage, 400, "is not an image Slicer can open"),
    Case("mhd_escape", _mhd_escape, 403, "outside its own folder"),
    Case("mhd_list", _mhd_list, 400, "several data files"),
    Case("mhd_truncated", _mhd_truncated, 400, "truncated"),
    Case("dicom_no_images", _dicom_empty, 400, "holds no DICOM images"),
    Case("dicom_two_series", _dicom_two_series, 400, "holds 2 DICOM series; pick one: Axial 2.5mm"),
    Case("dicom_missing_slice", _dicom_missing_slice, 400, "missing slices"),
    Case("dicom_mixed_size", _dicom_mixed_size, 400, "different sizes"),
    Case("dicom_mixed_orientation", _dicom_mixed_orientation, 400, "different orientations"),
    Case("dicom_duplicate_positions", _dicom_duplicate_positions, 400, "same position"),
    Case("dicom_multiframe", _dicom_multiframe, 400, "multi-frame"),
    Case("dicom_jpeg_lossless", _dicom_jpeg_lossless, 400, "cannot be decoded", reader="read_series"),
    Case("dicom_unknown_syntax", _dicom_unknown_syntax, 400, "MPEG2"),
    Case("dicom_too_many_files", _dicom_too_many_files, 413, "more than 5 files", {"max_dicom_files": 5}),
    Case("dicom_over_voxels", _dicom_over_voxels, 413, "voxels, more than the limit", {"max_voxels": 1000}),
    Case("dicom_corrupt_pixels", _dicom_corrupt_pixels, 400, "is truncated"),
    # added 2026-12-02 (untrusted images hardening)
    Case("dicom_short_pixels_file", _dicom_short_pixels_file, 400, "is truncated"),
    Case("dicom_no_pixel_data", _dicom_no_pixel_data, 400, "holds no pixel data"),
    Case("dicom_deep_sequences", _dicom_deep_sequences, 400, "nests data sequences"),
    Case("dicom_deep_sequences_folder", _dicom_deep_sequences_folder, 400, "nests data sequences"),
    Case("nifti_nan_vox_offset", _nifti_nan_vox_offset, 400, "invalid data offset"),
    Case("nifti_nan_quatern", _nifti_nan_quatern, 400, "non-finite orientation"),
    Case("nifti_inf_srow", _nifti_inf_srow, 400, "orientation"),
    # found by the header fuzzer (tests/corpus/fuzz_finds.py)
    Case("fuzz_dicom_wrong_value_length", _fuzz_find("fuzz_dicom_wrong_value_length"), 400, "wrong length or type"),
]


def build_all(out: Path) -> dict[str, Path]:
    """Build every case into its own subfolder of ``out``; name -> what to inspect."""
    built = {}
    for case in CASES:
        folder = out / case.name
        folder.mkdir(parents=True, exist_ok=True)
        built[case.name] = case.build(folder)
    return built


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/corpus/make_corpus.py OUTPUT_FOLDER")
    for name, path in build_all(Path(sys.argv[1])).items():
        print(f"{name:32s} {path}")
