"""Header-only inspection of untrusted image files: every reader path and every refusal."""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import sys
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from slicer_cloud.config import Limits
from slicer_cloud.core.images import IMAGE_SUFFIXES, ImageInfo, image_kind, inspect_image
from slicer_cloud.core.nrrd_io import nrrd_header, write_nrrd
from slicer_cloud.errors import SlicerCloudError


def _load_corpus():
    name = "slicer_cloud_test_corpus"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "corpus" / "make_corpus.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


corpus = _load_corpus()
IMAGE_CASES = [c for c in corpus.CASES if not c.name.startswith("dicom_")]
IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


# --------------------------------------------------------------------------------------------
# the malformed corpus


@pytest.mark.parametrize("case", IMAGE_CASES, ids=lambda c: c.name)
def test_malformed_file_is_refused_with_a_reason(case, tmp_path):
    target = case.build(tmp_path)
    with pytest.raises(SlicerCloudError) as caught:
        inspect_image(target, Limits(**case.limits))
    assert caught.value.status == case.status, caught.value.message
    assert case.message.lower() in caught.value.message.lower()
    assert target.name in caught.value.message or "folder" in caught.value.message


@pytest.mark.parametrize("name", ["nrrd_gzip_bomb", "nifti_gz_bomb", "mha_zlib_bomb"])
def test_bombs_are_refused_without_holding_their_output(name, tmp_path):
    case = next(c for c in corpus.CASES if c.name == name)
    target = case.build(tmp_path)
    tracemalloc.start()
    try:
        with pytest.raises(SlicerCloudError):
            inspect_image(target)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the bombs expand to 64 MiB (the NRRD's and the NIfTI's) or 4 MiB; the reader works in 1 MiB chunks
    assert peak < 6 * 1024 * 1024


def test_huge_header_is_refused_before_anything_is_read(tmp_path):
    target = next(c for c in corpus.CASES if c.name == "nifti_huge").build(tmp_path)
    tracemalloc.start()
    try:
        with pytest.raises(SlicerCloudError) as caught:
            inspect_image(target)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.status == 413 and f"{32767**3:,}" in caught.value.message
    assert peak < 1024 * 1024


def test_missing_file_is_404(tmp_path):
    with pytest.raises(SlicerCloudError) as caught:
        inspect_image(tmp_path / "nothing.nrrd")
    assert caught.value.status == 404


def test_check_data_off_skips_streaming_compressed_data(tmp_path):
    target = next(c for c in corpus.CASES if c.name == "nrrd_gzip_bomb").build(tmp_path)
    info = inspect_image(target, check_data=False)  # the header alone is fine
    assert info.dimensions == (16, 16, 8)
    # raw data is still checked by size, which costs nothing
    truncated = next(c for c in corpus.CASES if c.name == "nrrd_truncated_raw").build(tmp_path)
    with pytest.raises(SlicerCloudError):
        inspect_image(truncated, check_data=False)


# --------------------------------------------------------------------------------------------
# names


def test_image_kind_by_name(tmp_path):
    assert image_kind(Path("ct.nrrd")) == "volume"
    assert image_kind(Path("CT.NII.GZ")) == "volume"
    assert image_kind(Path("brain.mha")) == "volume"
    assert image_kind(Path("scan.nhdr")) == "volume"
    assert image_kind(Path("tumour.seg.nrrd")) == "segmentation"
    assert image_kind(Path("liver_label.nii.gz")) == "segmentation"
    assert image_kind(Path("slice.dcm")) == "dicom"
    assert image_kind(Path("notes.txt")) is None
    assert image_kind(Path("archive.gz")) is None
    assert set(IMAGE_SUFFIXES) == {".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd"}


def test_image_kind_of_folders(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.txt").write_text("x")
    assert image_kind(plain) is None
    nested = tmp_path / "export"
    corpus.write_dicom_folder(nested / "DICOM" / "SE1", shape=(8, 8, 2))
    (nested / "README.txt").write_text("exported")
    assert image_kind(nested) == "dicom"  # found two levels down, opening at most a few files


# --------------------------------------------------------------------------------------------
# NRRD


def test_nrrd_ras_space_is_converted_to_lps(tmp_path):
    header = corpus.nrrd_text(
        extra="space: right-anterior-superior\nspace directions: (0.5,0,0) (0,0.6,0) (0,0,2)\nspace origin: (10,20,30)\n"
    )
    path = corpus.write_nrrd_case(tmp_path / "ras.nrrd", header, corpus.small_array().tobytes())
    info = inspect_image(path)
    assert info.origin == (-10.0, -20.0, 30.0)
    assert info.spacing == (0.5, 0.6, 2.0)
    assert info.direction == ((-1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 1.0))


def test_nrrd_with_spacings_only_and_key_values(tmp_path):
    header = corpus.nrrd_text(extra="spacings: 0.7 0.8 3\nDICOM_x:=some value: with colon\n# a comment\n")
    path = corpus.write_nrrd_case(tmp_path / "plain.nrrd", header, corpus.small_array().tobytes())
    info = inspect_image(path)
    assert info.spacing == (0.7, 0.8, 3.0) and info.origin == (0.0, 0.0, 0.0) and info.direction == IDENTITY


def test_nrrd_2d_is_one_slice(tmp_path):
    header = corpus.nrrd_text("16 12", extra="space: left-posterior-superior\nspace directions: (1,0,0) (0,1,0)\n")
    path = corpus.write_nrrd_case(tmp_path / "flat.nrrd", header, bytes(16 * 12 * 2))
    info = inspect_image(path)
    assert info.dimensions == (16, 12, 1) and info.spacing == (1.0, 1.0, 1.0) and info.direction == IDENTITY


def test_nrrd_rgb_leading_component_axis(tmp_path):
    header = corpus.nrrd_text(
        "3 16 16 8",
        type_="unsigned char",
        extra="space: left-posterior-superior\nspace directions: none (1,0,0) (0,1,0) (0,0,1)\n"
        "kinds: RGB-color domain domain domain\n",
    )
    path = corpus.write_nrrd_case(tmp_path / "colour.nrrd", header, bytes(3 * 16 * 16 * 8))
    info = inspect_image(path)
    assert info.components == 3 and info.dimensions == (16, 16, 8) and info.scalar_type == "uint8"
    assert info.voxels == 3 * 16 * 16 * 8


def test_nrrd_component_axis_by_kinds_without_space(tmp_path):
    header = corpus.nrrd_text("2 16 16 8", type_="float", extra="kinds: vector domain domain domain\n")
    path = corpus.write_nrrd_case(tmp_path / "vectors.nrrd", header, bytes(2 * 16 * 16 * 8 * 4))
    info = inspect_image(path)
    assert info.components == 2 and info.scalar_type == "float32"


def test_nrrd_detached_raw_gzip_skips_and_big_endian(tmp_path):
    array = corpus.small_array()
    (tmp_path / "data.raw").write_bytes(b"junk line\n" + b"XXXX" + array.astype(">i2").tobytes())
    header = corpus.nrrd_text(data_file="data.raw").replace("endian: little", "endian: big")
    (tmp_path / "big.nhdr").write_text(header + "line skip: 1\nbyte skip: 4\n")
    info = inspect_image(tmp_path / "big.nhdr")
    assert info.dimensions == (16, 16, 8) and info.scalar_type == "int16"

    (tmp_path / "data.raw.gz").write_bytes(gzip.compress(array.tobytes()))
    (tmp_path / "packed.nhdr").write_text(corpus.nrrd_text(encoding="gzip", data_file="data.raw.gz"))
    assert inspect_image(tmp_path / "packed.nhdr").dimensions == (16, 16, 8)


def test_nrrd_raw_byte_skip_minus_one_reads_from_the_end(tmp_path):
    header = corpus.nrrd_text(extra="byte skip: -1\n")
    path = corpus.write_nrrd_case(tmp_path / "tail.nrrd", header, b"padding" + corpus.small_array().tobytes())
    assert inspect_image(path).dimensions == (16, 16, 8)


def test_nrrd_multi_member_gzip_is_counted_whole(tmp_path):
    data = corpus.small_array().tobytes()
    half = len(data) // 2
    payload = gzip.compress(data[:half]) + gzip.compress(data[half:])
    path = corpus.write_nrrd_case(tmp_path / "members.nrrd", corpus.nrrd_text(encoding="gzip"), payload)
    assert inspect_image(path).dimensions == (16, 16, 8)


def test_segmentation_flags(tmp_path):
    labels = np.zeros((4, 5, 6), dtype=np.uint8)
    write_nrrd(tmp_path / "liver.seg.nrrd", labels, (1, 1, 1), (0, 0, 0))
    write_nrrd(tmp_path / "liver_label.nrrd", labels, (1, 1, 1), (0, 0, 0))
    write_nrrd(tmp_path / "seg_probability.nrrd", labels.astype(np.float32), (1, 1, 1), (0, 0, 0))
    write_nrrd(tmp_path / "ct.nrrd", labels, (1, 1, 1), (0, 0, 0))
    assert inspect_image(tmp_path / "liver.seg.nrrd").is_segmentation
    assert inspect_image(tmp_path / "liver_label.nrrd").is_segmentation
    assert not inspect_image(tmp_path / "seg_probability.nrrd").is_segmentation  # not an integer type
    assert not inspect_image(tmp_path / "ct.nrrd").is_segmentation


def test_nrrd_header_refuses_unsupported_arrays():
    with pytest.raises(ValueError):
        nrrd_header((4, 4), np.int16, (1, 1, 1), (0, 0, 0))
    with pytest.raises(ValueError):
        nrrd_header((4, 4, 4), np.complex64, (1, 1, 1), (0, 0, 0))


# --------------------------------------------------------------------------------------------
# NIfTI


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("gz", [False, True])
def test_nifti_qform_both_endiannesses_plain_and_gzip(tmp_path, endian, gz):
    data = corpus.nifti_bytes(
        corpus.small_array(), endian=endian, pixdim=[1, 0.5, 0.6, 2.0, 0, 0, 0, 0], qform=(1, (0, 0, 0), (10, -20, 30), 1.0)
    )
    path = tmp_path / ("ct.nii.gz" if gz else "ct.nii")
    path.write_bytes(gzip.compress(data) if gz else data)
    info = inspect_image(path)
    assert info.format == "nifti" and info.dimensions == (16, 16, 8) and info.scalar_type == "int16"
    assert info.spacing == pytest.approx((0.5, 0.6, 2.0))
    # NIfTI is RAS: x and y change sign in LPS
    assert info.origin == (-10.0, 20.0, 30.0)
    assert info.direction == ((-1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 1.0))


def test_nifti_sform_preferred_when_scanner_and_spacing_from_pixdim(tmp_path):
    sform = np.array([[0.0, -0.9, 0.0, 1.0], [0.9, 0.0, 0.0, 2.0], [0.0, 0.0, 2.5, 3.0]])  # 90 degrees about S
    data = corpus.nifti_bytes(
        corpus.small_array(), pixdim=[1, 0.9, 0.9, 2.5, 0, 0, 0, 0], qform=(2, (0, 0, 0), (0, 0, 0), 1.0), sform=(1, sform)
    )
    (tmp_path / "s.nii").write_bytes(data)
    info = inspect_image(tmp_path / "s.nii")
    assert info.origin == (-1.0, -2.0, 3.0)
    assert np.allclose(info.direction, ((0.0, 1.0, 0.0), (-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)))
    assert info.spacing == pytest.approx((0.9, 0.9, 2.5))


def test_nifti_sheared_sform_without_qform_is_refused(tmp_path):
    sheared = np.array([[1.0, 0.5, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    (tmp_path / "shear.nii").write_bytes(corpus.nifti_bytes(corpus.small_array(), sform=(1, sheared)))
    with pytest.raises(SlicerCloudError, match="sheared"):
        inspect_image(tmp_path / "shear.nii")


def test_nifti_2d_rgb_and_vector(tmp_path):
    flat = corpus.nifti_bytes(corpus.small_array()[:1], dim=[2, 16, 16, 1, 1, 1, 1, 1])
    (tmp_path / "flat.nii").write_bytes(flat)
    assert inspect_image(tmp_path / "flat.nii").dimensions == (16, 16, 1)

    rgb = corpus.nifti_bytes(np.zeros((8, 16, 16, 3), dtype=np.uint8))
    (tmp_path / "rgb.nii").write_bytes(rgb)
    info = inspect_image(tmp_path / "rgb.nii")
    assert info.components == 3 and info.scalar_type == "uint8"

    vectors = corpus.nifti_bytes(np.zeros((3, 8, 16, 16), dtype=np.float32), dim=[5, 16, 16, 8, 1, 3, 1, 1])
    (tmp_path / "vectors.nii").write_bytes(vectors)
    info = inspect_image(tmp_path / "vectors.nii")
    assert info.components == 3 and info.dimensions == (16, 16, 8) and info.scalar_type == "float32"


def test_nifti2_is_refused_with_advice(tmp_path):
    (tmp_path / "v2.nii").write_bytes(corpus.nifti_bytes(corpus.small_array(), version=2))
    with pytest.raises(SlicerCloudError, match="NIfTI-2 file, which Slicer cannot open"):
        inspect_image(tmp_path / "v2.nii")


# --------------------------------------------------------------------------------------------
# MetaImage


def test_mha_local_raw_and_compressed(tmp_path):
    array = corpus.small_array()
    plain = tmp_path / "ct.mha"
    plain.write_bytes(corpus.metaimage_text(offset="1 2 3", spacing="0.5 0.5 2").encode() + array.tobytes())
    info = inspect_image(plain)
    assert info.format == "metaimage" and info.dimensions == (16, 16, 8) and info.scalar_type == "int16"
    assert info.origin == (1.0, 2.0, 3.0) and info.spacing == (0.5, 0.5, 2.0) and info.direction == IDENTITY

    packed = tmp_path / "packed.mha"
    header = corpus.metaimage_text(extra="CompressedData = True\n")
    packed.write_bytes(header.encode() + zlib.compress(array.tobytes()))
    assert inspect_image(packed).dimensions == (16, 16, 8)


def test_mha_transform_matrix_lists_axis_directions(tmp_path):
    c, s = np.cos(0.4), np.sin(0.4)
    header = corpus.metaimage_text(matrix=f"{c} {s} 0 {-s} {c} 0 0 0 1")
    (tmp_path / "oblique.mha").write_bytes(header.encode() + corpus.small_array().tobytes())
    info = inspect_image(tmp_path / "oblique.mha")
    # the first three numbers are the direction of the i axis, which is the first column
    assert np.allclose(np.asarray(info.direction)[:, 0], (c, s, 0))
    assert np.allclose(np.asarray(info.direction)[:, 1], (-s, c, 0))


def test_mhd_with_detached_raw_channels_and_header_size(tmp_path):
    (tmp_path / "vec.raw").write_bytes(b"H" * 10 + bytes(16 * 16 * 8 * 2 * 4))
    header = corpus.metaimage_text(
        element_type="MET_FLOAT", data_file="vec.raw", extra="ElementNumberOfChannels = 2\nHeaderSize = 10\n"
    )
    (tmp_path / "vec.mhd").write_text(header)
    info = inspect_image(tmp_path / "vec.mhd")
    assert info.components == 2 and info.scalar_type == "float32"


def test_mha_2d(tmp_path):
    header = corpus.metaimage_text(dims="16 12", spacing="0.5 0.5", offset="1 2", matrix="1 0 0 1")
    (tmp_path / "flat.mha").write_bytes(header.encode() + bytes(16 * 12 * 2))
    info = inspect_image(tmp_path / "flat.mha")
    assert info.dimensions == (16, 12, 1) and info.origin == (1.0, 2.0, 0.0) and info.spacing == (0.5, 0.5, 1.0)


def test_image_info_as_dict():
    info = ImageInfo(Path("a.nrrd"), "nrrd", (2, 3, 4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), IDENTITY, "int16", 2)
    assert info.voxels == 48 and info.nbytes == 96
    assert info.as_dict()["path"] == "a.nrrd" and info.as_dict()["voxels"] == 48


# --------------------------------------------------------------------------------------------
# Slicer agrees


def _corners(dims, spacing, origin, direction) -> list[tuple[float, ...]]:
    axes = np.asarray(direction) * np.asarray(spacing)
    points = [np.asarray(origin) + axes @ np.array(c) for c in itertools.product(*[(0, n - 1) for n in dims])]
    return sorted(tuple(np.round(p, 3)) for p in points)


def test_slicer_places_nifti_metaimage_and_nrrd_where_inspect_image_says(tmp_path, load_in_slicer):
    """Slicer (ITK readers) and inspect_image put every corner voxel at the same LPS point.

    Corners, not origin and axes, because Slicer turns a left-handed image (qfac -1, a negative
    axis) around on load: the same place in space, described from the other end."""
    array = corpus.small_array()
    c, s = np.cos(0.3), np.sin(0.3)
    rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.array(
        [[1, 0, 0], [0, np.cos(0.2), -np.sin(0.2)], [0, np.sin(0.2), np.cos(0.2)]]
    )
    sform = np.column_stack([rotation * np.array([0.9, 0.9, 2.4]), [5, 6, 7]])
    quaternion = tuple(np.array([1.0, 2.0, 3.0]) / np.linalg.norm([1.0, 2.0, 3.0]) * np.sin(0.25))
    pixdim = [1, 0.8, 0.9, 2.5, 0, 0, 0, 0]
    files = {
        "qform_left_handed.nii": corpus.nifti_bytes(array, pixdim=pixdim, qform=(1, quaternion, (10, -20, 30), -1.0)),
        "sform_only.nii": corpus.nifti_bytes(array, pixdim=[1, 0.9, 0.9, 2.4, 0, 0, 0, 0], sform=(1, sform)),
        "aligned_sform_qform_wins.nii": corpus.nifti_bytes(
            array, pixdim=pixdim, qform=(1, quaternion, (10, -20, 30), 1.0), sform=(2, sform)
        ),
        "no_orientation.nii": corpus.nifti_bytes(array, pixdim=pixdim),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "oblique.mha").write_bytes(
        corpus.metaimage_text(matrix=f"{c} {s} 0 {-s} {c} 0 0 0 1", offset="1 2 3", spacing="0.7 0.8 1.9").encode()
        + array.tobytes()
    )
    corpus.write_nrrd_case(
        tmp_path / "ras.nrrd",
        corpus.nrrd_text(extra="space: RAS\nspace directions: (0.9,0.1,0) (-0.1,0.9,0) (0,0,-2)\nspace origin: (5,6,7)\n"),
        array.tobytes(),
    )
    for path in sorted(tmp_path.iterdir()):
        info = inspect_image(path)
        dims, spacing, ras_origin, ras_directions = load_in_slicer(path)
        flip = np.diag([-1.0, -1.0, 1.0])
        theirs = _corners(dims, spacing, flip @ np.asarray(ras_origin), flip @ np.asarray(ras_directions))
        assert np.allclose(theirs, _corners(info.dimensions, info.spacing, info.origin, info.direction), atol=1e-3), path.name


def test_inspect_command_prints_geometry_and_fails_on_bad_files(tmp_path):
    from typer.testing import CliRunner

    from slicer_cloud.cli import app

    good = tmp_path / "ct.nrrd"
    write_nrrd(good, corpus.small_array(), (0.5, 0.5, 2.0), (1.0, 2.0, 3.0))
    bad = corpus.CASES[0].build(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["inspect", str(good)])
    assert result.exit_code == 0 and "16 x 16 x 8 voxels" in result.output and "0.5, 0.5, 2" in result.output
    result = runner.invoke(app, ["inspect", "--json", str(good), str(bad)])
    assert result.exit_code == 2
    assert '"dimensions": [16, 16, 8]' in result.output and "is not an image Slicer can open" in result.output
