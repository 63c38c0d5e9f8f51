"""Loading files into a Slicer (slicer-core) MRML scene, with the header checks first.

No web imports here: the viewer, the compute workers and notebooks all load data through this.
Every loader checks the file's header against the limits (``images.inspect_image``) before Slicer
allocates anything, and turns Slicer's silent failures into a :class:`SlicerCloudError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import slicer_cloud.core.vtk_env  # noqa: F401  (must precede the VTK imports)
import numpy as np
from slicer import (
    vtkMRMLLabelMapVolumeNode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLVolumeNode,
)
from trame_slicer.core import SlicerApp
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonMath import vtkMatrix4x4
from vtkmodules.vtkCommonDataModel import vtkImageData

from slicer_cloud.config import Limits
from slicer_cloud.core import dicom, images
from slicer_cloud.core.images import ImageInfo
from slicer_cloud.errors import SlicerCloudError


@dataclass
class LoadedVolume:
    """A volume in the scene, with what its header said."""

    node: vtkMRMLScalarVolumeNode
    info: ImageInfo


def new_slicer_app() -> SlicerApp:
    """A Slicer application core (scene, logics) with no views yet."""
    from slicer_cloud.core.vtk_output import quiet_vtk

    app = SlicerApp()
    quiet_vtk()  # after SlicerApp, which installs an output window printing to stderr
    return app


def load_volume(
    app: SlicerApp,
    path: Path,
    limits: Limits | None = None,
    *,
    series_uid: str | None = None,
    name: str | None = None,
) -> LoadedVolume:
    """Load a volume file or a DICOM series folder into ``app``'s scene.

    :param series_uid: for a folder holding several DICOM series, the one to load.
    :raises SlicerCloudError: the file is not an image, is damaged, or is over the limits.
    """
    limits = limits or Limits()
    path = Path(path)
    if path.is_dir():
        return _load_dicom(app, path, limits, series_uid=series_uid, name=name)
    info = images.inspect_image(path, limits)
    if info.format == "dicom":
        # One reader for DICOM pixels everywhere (pydicom, with its checks), never Slicer's: a
        # file whose pixel data is short must be refused, not shown as whatever memory follows.
        array, info = dicom.read_series(dicom.file_series(path), limits)
        node = volume_from_array(app, array, info, name=name or path.name)
        return LoadedVolume(node=node, info=info)
    before = set(_volume_node_ids(app))
    nodes = app.io_manager.load_volumes([str(path)])
    nodes = [n for n in nodes if n is not None and n.GetID() not in before]
    if not nodes or nodes[0].GetImageData() is None:
        raise SlicerCloudError(f"Slicer could not read {path.name}; the file may be damaged.", status=400)
    node = nodes[0]
    if name:
        node.SetName(name)
    return LoadedVolume(node=node, info=info)


def _volume_node_ids(app: SlicerApp) -> list[str]:
    nodes = app.scene.GetNodesByClass("vtkMRMLVolumeNode")
    return [nodes.GetItemAsObject(i).GetID() for i in range(nodes.GetNumberOfItems())]


def _load_dicom(app: SlicerApp, folder: Path, limits: Limits, *, series_uid: str | None, name: str | None) -> LoadedVolume:
    chosen = dicom.choose_series(folder, limits, series_uid)  # the same verdicts as inspect_image
    array, info = dicom.read_series(chosen, limits)
    node = volume_from_array(app, array, info, name=name or chosen.description or folder.name)
    return LoadedVolume(node=node, info=info)


def ijk_to_ras_matrix(info: ImageInfo) -> vtkMatrix4x4:
    """Slicer's IJK-to-RAS matrix from a header's LPS geometry."""
    direction = np.array(info.direction, dtype=float).reshape(3, 3)
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    matrix = vtkMatrix4x4()
    ras_dir = lps_to_ras @ direction
    ras_origin = lps_to_ras @ np.array(info.origin, dtype=float)
    for row in range(3):
        for col in range(3):
            matrix.SetElement(row, col, ras_dir[row, col] * info.spacing[col])
        matrix.SetElement(row, 3, ras_origin[row])
    return matrix


def volume_from_array(
    app: SlicerApp, array: np.ndarray, info: ImageInfo, *, name: str = "Volume", label: bool = False
) -> vtkMRMLVolumeNode:
    """Add a volume node holding ``array`` (shape k, j, i) placed as ``info`` says."""
    if array.ndim != 3:
        raise SlicerCloudError("Only 3D arrays (k, j, i) can become volumes.", status=400)
    k, j, i = array.shape
    image = vtkImageData()
    image.SetDimensions(i, j, k)
    flat = np.ascontiguousarray(array).reshape(-1)
    scalars = numpy_to_vtk(flat, deep=True)
    image.GetPointData().SetScalars(scalars)
    node = vtkMRMLLabelMapVolumeNode() if label else vtkMRMLScalarVolumeNode()
    node.SetName(name)
    node.SetIJKToRASMatrix(ijk_to_ras_matrix(info))
    node.SetAndObserveImageData(image)
    app.scene.AddNode(node)
    node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    if display is not None and not label:
        display.SetAndObserveColorNodeID("vtkMRMLColorTableNodeGrey")
        display.AutoWindowLevelOn()
    return node


def load_segmentation(app: SlicerApp, path: Path, reference: vtkMRMLVolumeNode | None, limits: Limits | None = None) -> vtkMRMLSegmentationNode:
    """Load a ``.seg.nrrd`` or a label map file as a segmentation shown over ``reference``."""
    limits = limits or Limits()
    path = Path(path)
    images.inspect_image(path, limits)
    if path.name.endswith(".seg.nrrd"):
        node = app.io_manager.load_segmentation(str(path))
        if node is None:
            raise SlicerCloudError(f"Slicer could not read the segmentation {path.name}.", status=400)
    else:
        before = set(_volume_node_ids(app))
        volumes = [n for n in app.io_manager.load_volumes([str(path)]) if n is not None and n.GetID() not in before]
        if not volumes:
            raise SlicerCloudError(f"Slicer could not read the label map {path.name}.", status=400)
        labelmap = volumes[0]
        node = vtkMRMLSegmentationNode()
        node.SetName(path.name.split(".")[0])
        app.scene.AddNode(node)
        node.CreateDefaultDisplayNodes()
        if not isinstance(labelmap, vtkMRMLLabelMapVolumeNode):
            converted = vtkMRMLLabelMapVolumeNode()
            app.scene.AddNode(converted)
            app.volumes_logic.CreateLabelVolumeFromVolume(app.scene, converted, labelmap)
            app.scene.RemoveNode(labelmap)
            labelmap = converted
        if not app.segmentations_logic.ImportLabelmapToSegmentationNode(labelmap, node):
            raise SlicerCloudError(f"{path.name} could not be turned into a segmentation.", status=400)
        app.scene.RemoveNode(labelmap)
    if reference is not None:
        node.SetReferenceImageGeometryParameterFromVolumeNode(reference)
    return node
