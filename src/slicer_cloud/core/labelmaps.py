"""Segmentations as label map arrays and back, on a reference volume's voxel grid.

What a DICOM SEG (or any per-voxel format) needs from a Slicer segmentation: one array with the
reference volume's shape (k, j, i) whose values are segment numbers 1..n, and each segment's name
and colour. No web imports.
"""

from __future__ import annotations

from dataclasses import dataclass

import slicer_cloud.core.vtk_env  # noqa: F401  (must precede the VTK imports)
import numpy as np
from slicer import vtkMRMLLabelMapVolumeNode, vtkMRMLSegmentationNode, vtkMRMLVolumeNode
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkStringArray

from slicer_cloud.core.images import ImageInfo
from slicer_cloud.errors import SlicerCloudError


@dataclass(frozen=True)
class SegmentEntry:
    """A segment as a label map knows it: its number (voxel value), name and RGB colour (0-1)."""

    number: int
    name: str
    color: tuple[float, float, float]


def segmentation_to_labelmap(app, node: vtkMRMLSegmentationNode, reference: vtkMRMLVolumeNode) -> tuple[np.ndarray, list[SegmentEntry]]:
    """Every segment of ``node`` as one array on ``reference``'s grid (shape k, j, i), values 1..n."""
    segmentation = node.GetSegmentation()
    ids = vtkStringArray()
    entries: list[SegmentEntry] = []
    for n in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(n)
        segment = segmentation.GetSegment(segment_id)
        ids.InsertNextValue(segment_id)
        entries.append(SegmentEntry(number=n + 1, name=segment.GetName() or f"Segment {n + 1}", color=tuple(segment.GetColor())))
    if not entries:
        raise SlicerCloudError("Nothing to save: the segmentation has no segments.")
    labelmap = vtkMRMLLabelMapVolumeNode()
    app.scene.AddNode(labelmap)
    try:
        ok = app.segmentations_logic.ExportSegmentsToLabelmapNode(node, ids, labelmap, reference, 0)  # 0: reference geometry
        image = labelmap.GetImageData()
        if not ok or image is None:
            raise SlicerCloudError("The segmentation could not be turned into a label map.", status=500)
        i, j, k = image.GetDimensions()
        expected = reference.GetImageData().GetDimensions()
        if (i, j, k) != tuple(expected):
            raise SlicerCloudError("The segmentation's label map does not match the volume's size.", status=500)
        array = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(k, j, i).copy()
    finally:
        app.scene.RemoveNode(labelmap)
    return array, entries


def labelmap_to_segmentation(
    app, labels: np.ndarray, info: ImageInfo, entries: list[SegmentEntry], reference: vtkMRMLVolumeNode, *, name: str = "Segmentation"
) -> vtkMRMLSegmentationNode:
    """A segmentation node over ``reference`` whose segment ``n`` is where ``labels == n``."""
    from slicer_cloud.core.scene import volume_from_array

    node = vtkMRMLSegmentationNode()
    node.SetName(name)
    app.scene.AddNode(node)
    node.CreateDefaultDisplayNodes()
    node.SetReferenceImageGeometryParameterFromVolumeNode(reference)
    segmentation = node.GetSegmentation()
    ids = vtkStringArray()
    for entry in sorted(entries, key=lambda e: e.number):
        segment_id = segmentation.AddEmptySegment("", entry.name, list(entry.color))
        ids.InsertNextValue(segment_id)
    if np.max(labels, initial=0) > len(entries):
        raise SlicerCloudError("The label map has values with no segment description.", status=400)
    labelmap = volume_from_array(app, labels.astype(np.uint8 if len(entries) < 256 else np.uint16), info, name=f"{name}-labels", label=True)
    try:
        if not app.segmentations_logic.ImportLabelmapToSegmentationNode(labelmap, node, ids):
            raise SlicerCloudError("The label map could not be turned into segments.", status=400)
    finally:
        app.scene.RemoveNode(labelmap)
    return node
