"""DICOM folders: finding series from headers, reading them into volumes, and every refusal."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from slicer_cloud.config import Limits
from slicer_cloud.core.dicom import DicomSeries, find_series, read_series
from slicer_cloud.core.images import image_kind, inspect_image
from slicer_cloud.core.phantom import make_phantom, write_dicom_series
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
DICOM_CASES = [c for c in corpus.CASES if c.name.startswith("dicom_")]


@pytest.fixture(scope="module")
def small_phantom():
    return make_phantom((24, 20, 10), (0.8, 0.9, 2.5))


@pytest.fixture
def series_folder(tmp_path, small_phantom):
    folder = tmp_path / "ct"
    write_dicom_series(folder, small_phantom, series_uid="1.2.826.0.1.3680043.8.498.1")
    return folder


# --------------------------------------------------------------------------------------------
# the written series


def test_written_series_is_found_with_its_geometry(series_folder, small_phantom):
    (series_folder / "notes.txt").write_text("not DICOM")
    (series_folder / "empty.dcm").write_bytes(b"")
    [series] = find_series(series_folder)
    assert isinstance(series, DicomSeries)
    assert series.uid == "1.2.826.0.1.3680043.8.498.1"
    assert series.description == "Phantom CT" and series.modality == "CT"
    assert (series.columns, series.rows, len(series.files)) == (24, 20, 10)
    assert series.spacing == pytest.approx((0.8, 0.9, 2.5))
    assert series.origin == pytest.approx(small_phantom.origin, abs=1e-4)
    assert series.direction == ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    assert series.problem is None and series.scalar_type == "int16"
    assert "Phantom CT" in series.label and "10 files" in series.label


def test_read_series_returns_the_phantom_in_hounsfield_units(series_folder, small_phantom):
    [series] = find_series(series_folder)
    array, info = read_series(series)
    assert array.dtype == np.int16 and array.shape == (10, 20, 24)
    assert np.array_equal(array, small_phantom.array)  # RescaleIntercept -1024 undone exactly
    assert info.format == "dicom" and info.dimensions == (24, 20, 10) and info.scalar_type == "int16"


def test_files_are_sorted_along_the_slice_normal_not_by_name(tmp_path, small_phantom):
    folder = tmp_path / "shuffled"
    files = write_dicom_series(folder, small_phantom)
    order = [7, 2, 9, 0, 4, 1, 8, 3, 6, 5]
    for name_index, path in zip(order, files):
        path.rename(folder / f"x{name_index:02d}.dcm")
    for path in folder.iterdir():  # instance numbers must not matter either
        ds = pydicom.dcmread(path)
        ds.InstanceNumber = 1
        ds.save_as(path)
    [series] = find_series(folder)
    array, _ = read_series(series)
    assert np.array_equal(array, small_phantom.array)


def test_oblique_series_direction_and_order(tmp_path, small_phantom):
    folder = tmp_path / "oblique"
    files = write_dicom_series(folder, small_phantom)
    angle = np.radians(20)
    row = np.array([np.cos(angle), np.sin(angle), 0.0])
    col = np.array([0.0, 0.0, -1.0])  # coronal-ish: image rows run towards the feet
    normal = np.cross(row, col)
    start = np.array([-10.0, 5.0, 40.0])
    for k, path in enumerate(reversed(files)):  # written in reverse: sorting must fix it
        ds = pydicom.dcmread(path)
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*row, *col)]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in start + (len(files) - 1 - k) * 2.5 * normal]
        ds.save_as(path)
    [series] = find_series(folder)
    assert np.allclose(np.asarray(series.direction), np.column_stack([row, col, normal]), atol=1e-6)
    assert series.origin == pytest.approx(tuple(start), abs=1e-4)
    assert series.spacing[2] == pytest.approx(2.5, abs=1e-4)
    array, _ = read_series(series)
    assert np.array_equal(array, small_phantom.array)


def test_single_file_series_is_one_slice(tmp_path, small_phantom):
    files = write_dicom_series(tmp_path / "one", make_phantom((16, 12, 1)))
    info = inspect_image(files[0])  # one file inspects as a one-slice image
    assert info.dimensions == (16, 12, 1)
    [series] = find_series(tmp_path / "one")
    array, info = read_series(series)
    assert array.shape == (1, 12, 16)


def test_fractional_rescale_gives_float32(tmp_path, small_phantom):
    folder = tmp_path / "pet"
    files = write_dicom_series(folder, small_phantom)
    for path in files:
        ds = pydicom.dcmread(path)
        ds.RescaleSlope = "0.5"
        ds.RescaleIntercept = "-512"
        ds.save_as(path)
    [series] = find_series(folder)
    assert series.scalar_type == "float32"
    array, info = read_series(series)
    assert array.dtype == np.float32 and info.scalar_type == "float32"
    stored = small_phantom.array.astype(np.float32) + 1024
    assert np.allclose(array, stored * 0.5 - 512)


def test_integer_rescale_past_int16_switches_to_float32_exactly(tmp_path, small_phantom):
    folder = tmp_path / "wide"
    files = write_dicom_series(folder, small_phantom)
    ds = pydicom.dcmread(files[6])
    ds.RescaleSlope = "20"  # (stored max 1924) x 20 - 1024 overflows int16 on slice 7 only
    ds.save_as(files[6])
    [series] = find_series(folder)
    array, _ = read_series(series)
    assert array.dtype == np.float32
    assert np.array_equal(array[:6], small_phantom.array[:6].astype(np.float32))  # earlier slices kept exactly
    assert np.array_equal(array[6], (small_phantom.array[6].astype(np.float32) + 1024) * 20 - 1024)


def test_several_series_are_listed_largest_first(tmp_path):
    folder = tmp_path / "study"
    corpus.write_dicom_folder(folder / "a", shape=(16, 12, 3), description="Scout")
    corpus.write_dicom_folder(folder / "b", shape=(16, 12, 6), description="Axial")
    series = find_series(folder)
    assert [s.description for s in series] == ["Axial", "Scout"]
    with pytest.raises(SlicerCloudError) as caught:
        inspect_image(folder)
    assert "holds 2 DICOM series" in caught.value.message and "Scout" in caught.value.message
    # each series on its own is fine
    assert read_series(series[1])[0].shape == (3, 12, 16)


def test_image_kind_and_inspect_of_a_dicom_folder(series_folder):
    assert image_kind(series_folder) == "dicom"
    info = inspect_image(series_folder)
    assert info.format == "dicom" and info.dimensions == (24, 20, 10) and info.path == series_folder


def test_read_series_checks_voxels_before_reading(series_folder):
    [series] = find_series(series_folder)
    for path in series.files:
        path.write_bytes(b"")  # would fail to decode, but the limit comes first
    with pytest.raises(SlicerCloudError) as caught:
        read_series(series, Limits(max_voxels=100))
    assert caught.value.status == 413


def test_find_series_on_a_missing_folder(tmp_path):
    with pytest.raises(SlicerCloudError) as caught:
        find_series(tmp_path / "nope")
    assert caught.value.status == 404


# --------------------------------------------------------------------------------------------
# the malformed corpus


@pytest.mark.parametrize("case", DICOM_CASES, ids=lambda c: c.name)
def test_malformed_series_is_refused_with_a_reason(case, tmp_path):
    target = case.build(tmp_path)
    limits = Limits(**case.limits)
    with pytest.raises(SlicerCloudError) as caught:
        if case.reader == "read_series":
            series = find_series(target, limits)
            assert len(series) == 1 and series[0].problem is None  # the headers alone look fine
            read_series(series[0], limits)
        else:
            inspect_image(target, limits)
    assert caught.value.status == case.status, caught.value.message
    assert case.message.lower() in caught.value.message.lower()


@pytest.mark.parametrize("name", ["dicom_missing_slice", "dicom_multiframe", "dicom_unknown_syntax", "dicom_mixed_size"])
def test_problem_series_are_still_listed_and_refuse_to_read(name, tmp_path):
    case = next(c for c in corpus.CASES if c.name == name)
    [series] = find_series(case.build(tmp_path))
    assert series.problem and case.message.lower() in series.problem.lower()
    with pytest.raises(SlicerCloudError) as caught:
        read_series(series)
    assert caught.value.status == 400


# --------------------------------------------------------------------------------------------
# Slicer reads what write_dicom_series writes


def test_slicer_reads_the_written_series(tmp_path, slicer_app, small_phantom):
    from vtk.util.numpy_support import vtk_to_numpy

    files = write_dicom_series(tmp_path / "ct", small_phantom)
    nodes = slicer_app.io_manager.load_volumes([str(f) for f in files])
    assert len(nodes) == 1
    image = nodes[0].GetImageData()
    assert image.GetDimensions() == (24, 20, 10)
    assert nodes[0].GetSpacing() == pytest.approx((0.8, 0.9, 2.5))
    ras = nodes[0].GetOrigin()
    assert (-ras[0], -ras[1], ras[2]) == pytest.approx(small_phantom.origin, abs=1e-4)
    voxels = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(10, 20, 24)
    assert np.array_equal(voxels, small_phantom.array)
    shutil.rmtree(tmp_path / "ct")
