"""Known-answer tests of the built-in modules (in-process), and one run of each kind of program
entry: ``--xml`` and a command line with a return-parameter file."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest

from slicer_cloud.compute.imageio import Volume, read_volume, write_volume
from slicer_cloud.compute.modules import builtin
from slicer_cloud.errors import SlicerCloudError

from .conftest import BOX_ML, BOX_VOXELS, SPACING, box_volume


@pytest.fixture
def ct(tmp_path):
    return write_volume(tmp_path / "ct.nrrd", box_volume())


def test_threshold_labels_the_voxels_in_range(ct, tmp_path):
    result = builtin.call("threshold", input=ct, output=tmp_path / "mask.nrrd", lower=100, upper=1000)
    mask = read_volume(tmp_path / "mask.nrrd")
    assert result == {"voxel_count": BOX_VOXELS}
    assert mask.array.dtype == np.uint8 and set(np.unique(mask.array)) == {0, 1}
    assert np.array_equal(mask.array == 1, box_volume().array == 300)
    assert mask.spacing == SPACING and mask.origin == box_volume().origin
    # bounds are inclusive
    assert builtin.call("threshold", input=ct, output=tmp_path / "m2.nrrd", lower=300, upper=300)["voxel_count"] == BOX_VOXELS
    with pytest.raises(SlicerCloudError, match="greater than upper"):
        builtin.call("threshold", input=ct, output=tmp_path / "m3.nrrd", lower=5, upper=1)


def test_otsu_splits_two_classes(tmp_path):
    rng = np.random.default_rng(1)
    array = np.where(np.arange(4000).reshape(10, 20, 20) < 1500, rng.normal(100, 5, 4000).reshape(10, 20, 20),
                     rng.normal(400, 5, 4000).reshape(10, 20, 20)).astype(np.float32)
    path = write_volume(tmp_path / "two.nrrd", Volume(array))
    result = builtin.call("otsu_threshold", input=path, output=tmp_path / "o.nrrd")
    assert 130 < result["threshold"] < 370
    assert result["voxel_count"] == 2500


def test_gaussian_smoothing_keeps_the_mean_and_spreads_a_point(tmp_path):
    array = np.zeros((21, 21, 21), np.float32)
    array[10, 10, 10] = 1000
    path = write_volume(tmp_path / "point.nrrd", Volume(array, (1.0, 1.0, 1.0)))
    builtin.call("gaussian_smoothing", input=path, output=tmp_path / "g.nrrd", sigma=2.0)
    out = read_volume(tmp_path / "g.nrrd").array
    assert out.sum() == pytest.approx(1000, rel=1e-3)
    assert out[10, 10, 10] < 1000 and out[10, 10, 12] > 0
    profile = out[10, 10, :]
    assert np.argmax(profile) == 10 and profile[8] == pytest.approx(profile[12])


def test_median_filter_removes_a_speck(tmp_path):
    array = np.full((9, 9, 9), 50, np.int16)
    array[4, 4, 4] = 9999
    path = write_volume(tmp_path / "speck.nrrd", Volume(array))
    builtin.call("median_filter", input=path, output=tmp_path / "m.nrrd", radius="1,1,1")
    out = read_volume(tmp_path / "m.nrrd").array
    assert out.dtype == np.int16 and np.all(out == 50)


def test_resample_to_a_coarser_spacing_keeps_the_extent(ct, tmp_path):
    result = builtin.call("resample", input=ct, output=tmp_path / "r.nrrd", spacing=[1.6, 1.6, 4.0], interpolation="nearest")
    out = read_volume(tmp_path / "r.nrrd")
    assert result["dimensions"] == [32, 32, 20]
    assert out.spacing == (1.6, 1.6, 4.0)
    # the outer edge stays put: origin moves by half the old and new voxel difference
    assert np.allclose(out.origin, np.array(box_volume().origin) + np.array([0.4, 0.4, 1.0]))
    assert (out.array == 300).sum() == 10 * 10 * 10


def test_crop_keeps_the_region_in_place(ct, tmp_path):
    volume = box_volume()
    centre = np.array(volume.origin) + np.array([30, 30, 20]) * np.array(SPACING)  # voxel (30, 30, 20)
    result = builtin.call("crop", input=ct, output=tmp_path / "c.nrrd", region=[*centre, 4.0, 4.0, 4.0])
    out = read_volume(tmp_path / "c.nrrd")
    assert result["dimensions"] == [11, 11, 5]
    assert np.allclose(out.origin, np.array(volume.origin) + np.array([25, 25, 18]) * np.array(SPACING))
    assert np.array_equal(out.array, volume.array[18:23, 25:36, 25:36])
    with pytest.raises(SlicerCloudError, match="does not overlap"):
        builtin.call("crop", input=ct, output=tmp_path / "x.nrrd", region=[900, 900, 900, 1, 1, 1])


def test_largest_island_keeps_only_the_biggest(tmp_path):
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[2:8, 2:8, 2:8] = 1  # 216 voxels
    labels[12:14, 12:14, 12:14] = 2  # 8 voxels
    labels[0, 19, 19] = 1
    path = write_volume(tmp_path / "islands.nrrd", Volume(labels))
    result = builtin.call("largest_island", input=path, output=tmp_path / "l.nrrd")
    out = read_volume(tmp_path / "l.nrrd").array
    assert result == {"island_voxels": 216, "islands": 3}
    assert (out == 1).sum() == 216 and (out == 2).sum() == 0


def test_segment_statistics_reports_volumes_in_ml(ct, tmp_path):
    labels = np.zeros((40, 64, 64), np.uint8)
    labels[10:30, 20:40, 20:40] = 1
    labels[0:2, 0:5, 0:5] = 3
    seg = write_volume(tmp_path / "seg.nrrd", Volume(labels, SPACING, box_volume().origin))
    result = builtin.call("segment_statistics", segmentation=seg, table=tmp_path / "s.csv", intensity=ct)
    voxel = 0.8 * 0.8 * 2.0
    assert result["labels"] == [1, 3]
    assert result["voxel_counts"] == [BOX_VOXELS, 50]
    assert result["volumes_ml"][0] == pytest.approx(BOX_ML)
    assert result["volumes_mm3"][1] == pytest.approx(50 * voxel)
    assert result["total_volume_ml"] == pytest.approx(BOX_ML + 50 * voxel / 1000)
    assert result["means"] == [300.0, 0.0]
    rows = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert rows[0]["label"] == "1" and float(rows[0]["volume_ml"]) == pytest.approx(BOX_ML)
    assert float(rows[0]["std"]) == 0.0 and float(rows[0]["max"]) == 300.0


def test_segment_statistics_refuses_a_different_grid(tmp_path, ct):
    seg = write_volume(tmp_path / "seg.nrrd", Volume(np.ones((4, 4, 4), np.uint8)))
    with pytest.raises(SlicerCloudError, match="same grid"):
        builtin.call("segment_statistics", segmentation=seg, table=tmp_path / "s.csv", intensity=ct)


def test_labelmap_to_model_makes_a_closed_surface(tmp_path):
    labels = np.zeros((24, 24, 24), np.uint8)
    labels[4:20, 4:20, 4:20] = 1
    path = write_volume(tmp_path / "cube.nrrd", Volume(labels, (1.0, 1.0, 1.0), (10.0, 20.0, 30.0)))
    result = builtin.call("labelmap_to_model", input=path, output=tmp_path / "cube.stl", smoothing=0.0)
    assert result["points"] > 100 and result["triangles"] > 100
    assert result["volume_mm3"] == pytest.approx(16**3, rel=0.05)  # the iso-surface sits half a voxel in
    from slicer_cloud.compute.inspect import read_model

    bounds = read_model(tmp_path / "cube.stl").GetBounds()
    assert bounds[0] == pytest.approx(10 + 3.5, abs=0.6) and bounds[5] == pytest.approx(30 + 19.5, abs=0.6)


def test_program_answers_xml_and_runs_with_a_return_file(ct, tmp_path):
    xml = subprocess.run([*builtin.command("threshold"), "--xml"], capture_output=True, text=True, check=True).stdout
    assert xml.lstrip().startswith("<?xml") and "<name>lower</name>" in xml
    done = subprocess.run(
        [*builtin.command("threshold"), "--lower", "100", "--upper", "1000", str(ct), str(tmp_path / "o.nrrd"),
         "--returnparameterfile", str(tmp_path / "ret.txt")],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "<filter-progress>" in done.stdout
    assert (tmp_path / "ret.txt").read_text() == f"voxel_count = {BOX_VOXELS}\n"
    bad = subprocess.run([*builtin.command("threshold"), "--lower", "abc", str(ct), str(tmp_path / "p.nrrd")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "'lower': expects a number" in bad.stderr
    assert not (tmp_path / "p.nrrd").exists()


def test_exported_shims_answer_xml(tmp_path):
    shims = builtin.export_shims(tmp_path / "bin")
    assert [s.name for s in shims] == list(builtin.NAMES)
    out = subprocess.run([str(shims[0]), "--xml"], capture_output=True, text=True, check=True).stdout
    assert "<executable>" in out
    assert sys.executable in shims[0].read_text()
