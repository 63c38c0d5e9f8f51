"""Notebook helpers take a DICOMweb series reference like a file: show, Viewer and run."""

from __future__ import annotations

import numpy as np
import pytest

from slicer_cloud.errors import SlicerCloudError


def test_show_viewer_and_run_accept_a_series_reference(orthanc, stored, monkeypatch, tmp_path):
    from slicer_cloud.compute.imageio import read_volume
    from slicer_cloud.notebook import Viewer, configure, resolve, run, show

    phantom, datasets = stored["jpegls"]
    for key, value in orthanc.servers_env("orthanc").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ref = f"dicomweb:orthanc/{datasets[0].StudyInstanceUID}/{datasets[0].SeriesInstanceUID}"

    path = resolve(ref)
    assert np.array_equal(read_volume(path).array, phantom.array)
    image = show(ref, view="axial", size=96)
    assert image.data[:4] == b"\x89PNG"
    viewer = Viewer(ref, size=96)
    assert viewer.slider.max == phantom.array.shape[0] - 1
    configure(out=tmp_path / "results", engine="local")
    mask = run("threshold", input=ref, lower=200, upper=3000, progress=False)
    assert mask.state == "succeeded"
    assert mask.returned["voxel_count"] == int(((phantom.array >= 200) & (phantom.array <= 3000)).sum())
    with pytest.raises(SlicerCloudError, match="no DICOMweb server named 'elsewhere'"):
        show("dicomweb:elsewhere/1.2/3.4")
