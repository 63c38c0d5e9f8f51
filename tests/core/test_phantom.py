"""The built-in phantom: known tissue values, determinism, NRRD and DICOM output, the cached sample."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from slicer_cloud.core import phantom as phantom_module
from slicer_cloud.core.images import inspect_image
from slicer_cloud.core.phantom import HU, make_phantom, sample_path, write_nrrd


@pytest.fixture(scope="module")
def default_phantom():
    return make_phantom()


def test_default_phantom_is_a_ct_sized_int16_volume(default_phantom):
    assert default_phantom.array.dtype == np.int16
    assert default_phantom.array.shape == (128, 256, 256)  # (k, j, i)
    assert default_phantom.shape == (256, 256, 128)
    assert default_phantom.spacing == (1.0, 1.0, 2.0)
    # centred on the origin: the first voxel sits half a field of view away
    assert default_phantom.origin == (-127.5, -127.5, -127.0)


@pytest.mark.parametrize("name", ["air", "fat", "lung_right", "lung_left", "heart", "liver", "lesion", "spine", "disc"])
def test_landmarks_hold_their_tissue_value(default_phantom, name):
    (i, j, k), expected = default_phantom.landmarks[name]
    assert default_phantom.array[k, j, i] == expected


def test_tissue_values_are_ct_like(default_phantom):
    lung_index, _ = default_phantom.landmarks["lung_left"]
    i, j, k = lung_index
    assert default_phantom.array[k, j, i] == HU["lung"] == -850
    (i, j, k), _ = default_phantom.landmarks["lesion"]
    (li, lj, lk), _ = default_phantom.landmarks["liver"]
    # the lesion stands out from the liver by about +60 HU
    assert default_phantom.array[k, j, i] - default_phantom.array[lk, lj, li] == 60
    values = set(np.unique(default_phantom.array).tolist())
    assert {HU["cortical_bone"], HU["cancellous_bone"], HU["rib"], HU["fat"], HU["air"]} <= values
    # outside the body is air all around
    assert (default_phantom.array[:, 0, :] == HU["air"]).all()
    assert (default_phantom.array[:, :, 0] == HU["air"]).all()


def test_lesion_is_a_sphere_in_millimetres():
    ph = make_phantom((96, 96, 48), (2.0, 2.0, 4.0))
    mask = ph.array == HU["lesion"]
    k, j, i = np.nonzero(mask)
    extent_mm = [(a.max() - a.min() + 1) * s for a, s in ((i, 2.0), (j, 2.0), (k, 4.0))]
    assert max(extent_mm) - min(extent_mm) <= 4.0  # equal in x, y and z to within a voxel


def test_phantom_is_deterministic():
    a = make_phantom((48, 40, 24))
    b = make_phantom((48, 40, 24))
    assert np.array_equal(a.array, b.array)
    noisy_a = make_phantom((48, 40, 24), noise_hu=10.0, seed=3)
    noisy_b = make_phantom((48, 40, 24), noise_hu=10.0, seed=3)
    assert np.array_equal(noisy_a.array, noisy_b.array)
    assert not np.array_equal(noisy_a.array, a.array)


def test_phantom_nrrd_round_trips_through_inspect_image(tmp_path, default_phantom):
    path = tmp_path / "phantom.nrrd"
    write_nrrd(path, default_phantom.array, default_phantom.spacing, default_phantom.origin)
    info = inspect_image(path)
    assert info.format == "nrrd"
    assert info.dimensions == (256, 256, 128)
    assert info.spacing == (1.0, 1.0, 2.0)
    assert info.origin == default_phantom.origin
    assert info.direction == ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    assert info.scalar_type == "int16"
    assert not info.is_segmentation
    assert not list(tmp_path.glob(".*partial*"))


def test_write_nrrd_raw_vector_and_oblique(tmp_path):
    array = np.arange(4 * 5 * 6 * 3, dtype=np.float32).reshape(4, 5, 6, 3)
    c, s = np.cos(0.3), np.sin(0.3)
    direction = ((c, -s, 0.0), (s, c, 0.0), (0.0, 0.0, 1.0))
    path = tmp_path / "vector.nrrd"
    write_nrrd(path, array, (0.5, 0.7, 1.5), (10.0, -20.0, 30.0), direction, gzip=False)
    info = inspect_image(path)
    assert info.dimensions == (6, 5, 4) and info.components == 3 and info.scalar_type == "float32"
    assert np.allclose(info.spacing, (0.5, 0.7, 1.5))
    assert np.allclose(info.direction, direction)
    # raw data follows the header in i-fastest order
    data = path.read_bytes()
    assert data.endswith(array.astype("<f4").tobytes())


def test_sample_path_generates_once_and_caches(tmp_path):
    first = sample_path(tmp_path)
    assert first.parent == tmp_path and first.suffix == ".nrrd"
    stamp = first.stat().st_mtime_ns
    again = sample_path(tmp_path)
    assert again == first and again.stat().st_mtime_ns == stamp
    info = inspect_image(first)
    assert info.dimensions == (256, 256, 128)


def test_sample_path_regenerates_for_a_new_version(tmp_path, monkeypatch):
    old = sample_path(tmp_path)
    monkeypatch.setattr(phantom_module, "PHANTOM_VERSION", "test-next")
    new = sample_path(tmp_path)
    assert new != old and new.is_file() and "test-next" in new.name


def test_sample_path_concurrent_callers_see_only_the_finished_file(tmp_path):
    code = (
        "import sys; from pathlib import Path; from slicer_cloud.core.phantom import sample_path;"
        "from slicer_cloud.core.images import inspect_image;"
        "p = sample_path(Path(sys.argv[1])); print(p, inspect_image(p).dimensions)"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        outputs.append(out.strip())
    assert len(set(outputs)) == 1 and outputs[0].endswith("(256, 256, 128)")
    nrrds = [p for p in tmp_path.iterdir() if p.suffix == ".nrrd"]
    assert [p.name for p in nrrds] == [Path(outputs[0].split()[0]).name]


def test_slicer_loads_the_written_nrrd(tmp_path, load_in_slicer):
    ph = make_phantom((40, 32, 12), (0.8, 0.9, 2.5))
    path = tmp_path / "small.nrrd"
    write_nrrd(path, ph.array, ph.spacing, ph.origin)
    info = inspect_image(path)
    dims, spacing, ras_origin, ras_dirs = load_in_slicer(path)
    assert tuple(dims) == info.dimensions
    assert np.allclose(spacing, info.spacing)
    lps_origin = (-ras_origin[0], -ras_origin[1], ras_origin[2])
    assert np.allclose(lps_origin, info.origin)
    assert np.allclose(np.diag([-1, -1, 1]) @ np.asarray(ras_dirs), info.direction)
