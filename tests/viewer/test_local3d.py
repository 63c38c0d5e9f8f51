"""The copy of a volume sent to the browser: every voxel lands at the same RAS position as in
Slicer (axes permuted and flipped as the IJK-to-RAS matrix says), at most the asked size."""

from __future__ import annotations

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkCommonMath import vtkMatrix4x4

from slicer_cloud.viewer.local3d import downsample


def image_of(array: np.ndarray) -> vtkImageData:
    """``array`` indexed [k, j, i] as a VTK image (i fastest)."""
    image = vtkImageData()
    image.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    image.GetPointData().SetScalars(numpy_to_vtk(np.ascontiguousarray(array).ravel(), deep=True))
    return image


def matrix_of(rows) -> vtkMatrix4x4:
    m = vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, rows[r][c])
    return m


def value_at_ras(copy: vtkImageData, ras) -> int:
    index = [round((ras[a] - copy.GetOrigin()[a]) / copy.GetSpacing()[a]) for a in range(3)]
    dims = copy.GetDimensions()
    array = vtk_to_numpy(copy.GetPointData().GetScalars()).reshape(dims[2], dims[1], dims[0])
    return int(array[index[2], index[1], index[0]])


def test_every_voxel_keeps_its_ras_position_in_a_flipped_permuted_volume():
    rng = np.random.default_rng(1)
    array = rng.integers(-1000, 2000, size=(6, 7, 8), dtype=np.int16)  # [k, j, i]
    # i -> -R (2 mm), j -> S (3 mm), k -> -A (4 mm): flips and a swap of axes
    ijk_to_ras = matrix_of([[-2, 0, 0, 10], [0, 0, -4, 20], [0, 3, 0, -30], [0, 0, 0, 1]])
    copy, step = downsample(image_of(array), ijk_to_ras, longest_side=8)
    assert step == 1
    assert copy.GetSpacing() == (2.0, 4.0, 3.0)
    for k, j, i in [(0, 0, 0), (5, 6, 7), (2, 3, 4), (1, 6, 0)]:
        ras = (10 - 2 * i, 20 - 4 * k, -30 + 3 * j)
        assert value_at_ras(copy, ras) == array[k, j, i]


def test_the_copy_is_at_most_the_asked_size():
    array = np.zeros((300, 512, 512), dtype=np.int16)
    identity = matrix_of([[0.7, 0, 0, 0], [0, 0.7, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    copy, step = downsample(image_of(array), identity, longest_side=128)
    assert step == 4
    assert copy.GetDimensions() == (128, 128, 75)
    assert copy.GetSpacing() == (2.8, 2.8, 4.0)
