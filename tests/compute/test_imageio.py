"""The numpy readers and writers the built-in modules use: round trips and hostile headers."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from slicer_cloud.compute.imageio import Volume, read_volume, write_volume
from slicer_cloud.config import Limits
from slicer_cloud.errors import SlicerCloudError


def _oblique() -> np.ndarray:
    angle = 0.3
    return np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1.0]])


@pytest.mark.parametrize("name", ["v.nrrd", "v.nii", "v.nii.gz", "v.mha"])
@pytest.mark.parametrize("dtype", ["int16", "uint8", "float32"])
def test_round_trip_keeps_voxels_and_geometry(tmp_path, name, dtype):
    array = (np.arange(5 * 6 * 7) % 251).reshape(5, 6, 7).astype(dtype)
    volume = Volume(array, (0.5, 0.7, 2.0), (10.0, -20.0, 30.0), _oblique())
    back = read_volume(write_volume(tmp_path / name, volume))
    assert back.array.dtype == np.dtype(dtype)
    assert np.array_equal(back.array, array)
    assert np.allclose(back.spacing, volume.spacing, atol=1e-5)
    assert np.allclose(back.origin, volume.origin, atol=1e-4)
    assert np.allclose(back.direction, volume.direction, atol=1e-5)


def test_nrrd_in_ras_space_is_converted_to_lps(tmp_path):
    raw = np.arange(8, dtype=np.uint8).tobytes()
    header = (
        "NRRD0004\ntype: uchar\ndimension: 3\nspace: right-anterior-superior\nsizes: 2 2 2\n"
        "space directions: (1,0,0) (0,2,0) (0,0,3)\nendian: little\nencoding: raw\nspace origin: (5,6,7)\n\n"
    )
    (tmp_path / "ras.nrrd").write_bytes(header.encode() + raw)
    volume = read_volume(tmp_path / "ras.nrrd")
    assert volume.spacing == (1.0, 2.0, 3.0)
    assert volume.origin == (-5.0, -6.0, 7.0)
    assert np.allclose(volume.direction, np.diag([-1.0, -1.0, 1.0]))


def test_header_over_the_voxel_limit_is_refused_before_reading(tmp_path):
    header = "NRRD0004\ntype: short\ndimension: 3\nsizes: 4000 4000 4000\nencoding: raw\n\n"
    (tmp_path / "huge.nrrd").write_bytes(header.encode() + b"\0" * 16)
    with pytest.raises(SlicerCloudError) as caught:
        read_volume(tmp_path / "huge.nrrd", Limits(max_voxels=10**9))
    assert caught.value.status == 413 and "SLICER_CLOUD_MAX_VOXELS" in caught.value.message


def test_truncated_and_garbage_files_get_a_reason(tmp_path):
    write_volume(tmp_path / "ok.nrrd", Volume(np.ones((8, 8, 8), np.int16)))
    data = (tmp_path / "ok.nrrd").read_bytes()
    (tmp_path / "cut.nrrd").write_bytes(data[: len(data) - 20])
    with pytest.raises(SlicerCloudError, match="truncated|not a readable"):
        read_volume(tmp_path / "cut.nrrd")
    (tmp_path / "text.nii.gz").write_bytes(gzip.compress(b"hello"))
    with pytest.raises(SlicerCloudError, match="not a NIfTI"):
        read_volume(tmp_path / "text.nii.gz")
    with pytest.raises(SlicerCloudError, match="unknown image format"):
        read_volume(tmp_path / "picture.jpg")


def test_gzip_bomb_is_refused_like_every_other_reader_refuses_it(tmp_path):
    # declares 1000 voxels but carries 100 MB of zeros: inflating stops one chunk past the
    # declared size and the file is refused, the verdict of the viewer and of inspect too
    bomb = gzip.compress(b"\0" * (100 * 1024 * 1024), 9)
    header = "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 10 10 10\nencoding: gzip\n\n"
    (tmp_path / "bomb.nrrd").write_bytes(header.encode() + bomb)
    with pytest.raises(SlicerCloudError, match="decompression bomb"):
        read_volume(tmp_path / "bomb.nrrd")


def test_detached_data_file_cannot_leave_its_folder(tmp_path):
    header = "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 1 1 1\nencoding: raw\ndata file: ../../etc/passwd\n\n"
    (tmp_path / "escape.nhdr").write_text(header)
    with pytest.raises(SlicerCloudError, match="outside its own folder"):
        read_volume(tmp_path / "escape.nhdr")
