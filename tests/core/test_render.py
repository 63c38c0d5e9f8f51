"""Offscreen rendering with slicer-core: slices and 3D volume rendering to PNG."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from slicer_cloud.core.phantom import make_phantom, write_dicom_series, write_nrrd
from slicer_cloud.errors import SlicerCloudError


@pytest.fixture(scope="module")
def phantom_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("render")
    phantom = make_phantom(shape=(96, 96, 48), spacing=(3.0, 3.0, 6.0))
    path = folder / "phantom.nrrd"
    write_nrrd(path, phantom.array, phantom.spacing, phantom.origin)
    return path


def pixels(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return np.asarray(image.convert("L"), dtype=np.int16)


def test_a_slice_shows_the_phantom_against_the_background(phantom_file):
    from slicer_cloud.core.render import render_slice

    image = pixels(render_slice(phantom_file, orientation="axial", preset="ct-abdomen", size=200))
    assert image.shape == (200, 200)
    centre = image[80:120, 80:120]
    corner = image[:15, :15]
    assert corner.mean() < 10  # air and outside the volume are black at abdomen W/L
    assert centre.mean() > corner.mean() + 40  # soft tissue is grey


def test_index_orientation_and_window_level_change_the_image(phantom_file):
    from slicer_cloud.core.render import render_slice

    middle = pixels(render_slice(phantom_file, orientation="axial", size=128))
    first = pixels(render_slice(phantom_file, orientation="axial", index=0, size=128))
    sagittal = pixels(render_slice(phantom_file, orientation="sagittal", size=128))
    lung = pixels(render_slice(phantom_file, orientation="axial", preset="ct-lung", size=128))
    bone = pixels(render_slice(phantom_file, orientation="axial", window=1000, level=400, size=128))
    assert np.abs(middle - first).mean() > 1
    assert np.abs(middle - sagittal).mean() > 1
    assert np.abs(lung - bone).mean() > 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"orientation": "oblique"}, "orientation"),
        ({"index": 10_000}, "index must be between"),
        ({"window": 100}, "both window and level"),
        ({"window": -5, "level": 0}, "positive"),
        ({"preset": "ct-heart"}, "Unknown window/level preset"),
        ({"size": 5}, "size"),
        ({"offset": 1e6}, "offset must be between"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(phantom_file, kwargs, message):
    from slicer_cloud.core.render import render_slice

    with pytest.raises(SlicerCloudError) as caught:
        render_slice(phantom_file, **kwargs)
    assert message in caught.value.message
    assert caught.value.status == 422


def test_volume_rendering_shows_the_body(phantom_file):
    from slicer_cloud.core.render import render_volume, volume_preset_names

    assert "CT-Bone" in volume_preset_names()
    anterior = pixels(render_volume(phantom_file, preset="CT-Bone", view="anterior", size=128))
    left = pixels(render_volume(phantom_file, preset="CT-Bone", view="left", size=128))
    assert anterior.std() > 5  # something is drawn, not a flat background
    assert np.abs(anterior - left).mean() > 1
    with pytest.raises(SlicerCloudError):
        render_volume(phantom_file, preset="No-Such-Preset")


def test_a_non_image_is_refused_before_slicer_reads_it(tmp_path):
    from slicer_cloud.core.render import render_slice

    bogus = tmp_path / "bogus.nrrd"
    bogus.write_text("hello\n")
    with pytest.raises(SlicerCloudError) as caught:
        render_slice(bogus)
    assert caught.value.status == 400


def test_a_dicom_series_lands_where_its_nrrd_twin_does(tmp_path):
    """Volumes built from DICOM arrays get the same RAS geometry as Slicer's own file reader."""
    from slicer_cloud.core.scene import load_volume, new_slicer_app

    phantom = make_phantom(shape=(32, 24, 12), spacing=(2.0, 3.0, 4.0))
    write_nrrd(tmp_path / "twin.nrrd", phantom.array, phantom.spacing, phantom.origin)
    write_dicom_series(tmp_path / "series", phantom)
    app = new_slicer_app()
    from_file = load_volume(app, tmp_path / "twin.nrrd").node
    from_dicom = load_volume(app, tmp_path / "series").node
    bounds_file, bounds_dicom = [0.0] * 6, [0.0] * 6
    from_file.GetRASBounds(bounds_file)
    from_dicom.GetRASBounds(bounds_dicom)
    assert np.allclose(bounds_file, bounds_dicom, atol=1e-3)
    assert from_dicom.GetImageData().GetDimensions() == (32, 24, 12)
    from vtkmodules.util.numpy_support import vtk_to_numpy

    voxels = vtk_to_numpy(from_dicom.GetImageData().GetPointData().GetScalars()).reshape(12, 24, 32)
    assert np.array_equal(voxels, phantom.array)
