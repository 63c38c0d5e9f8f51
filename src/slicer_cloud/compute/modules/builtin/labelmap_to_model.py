"""labelmap_to_model: turns a label map into a surface model (STL, OBJ, VTP, VTK or PLY) with
Slicer's own segmentation conversion (binary labelmap to closed surface, from slicer-core)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from slicer_cloud.compute.modules.builtin._program import Progress, run_module
from slicer_cloud.compute.modules.builtin._volumes import load_scalar
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store.atomic import atomic_output

NAME = "labelmap_to_model"
XML = """<?xml version="1.0" encoding="utf-8"?>
<executable>
  <category>Surface Models</category>
  <title>Label Map to Model</title>
  <description>Makes a closed surface model of one label (or of all non-zero voxels) with Slicer's segmentation conversion: smoothing and decimation as in Slicer. Coordinates are LPS, as Slicer writes models.</description>
  <version>1.0</version>
  <contributor>slicer-cloud</contributor>
  <parameters>
    <label>Input and output</label>
    <image type="label" fileExtensions=".nrrd,.nii.gz,.nii,.mha">
      <name>input</name>
      <label>Input label map</label>
      <channel>input</channel>
      <index>0</index>
      <description>The label map.</description>
    </image>
    <geometry type="model" fileExtensions=".stl,.obj,.vtp,.vtk,.ply">
      <name>output</name>
      <label>Output model</label>
      <channel>output</channel>
      <index>1</index>
      <description>The surface; the format follows the extension.</description>
    </geometry>
  </parameters>
  <parameters>
    <label>Surface</label>
    <integer>
      <name>label</name>
      <longflag>--label</longflag>
      <label>Label</label>
      <description>The label to convert; 0 converts every non-zero voxel.</description>
      <default>0</default>
      <constraints><minimum>0</minimum></constraints>
    </integer>
    <double>
      <name>smoothing</name>
      <longflag>--smoothing</longflag>
      <label>Smoothing factor</label>
      <description>0 (none) to 1 (strong), as in Slicer.</description>
      <default>0.5</default>
      <constraints><minimum>0</minimum><maximum>1</maximum><step>0.1</step></constraints>
    </double>
    <double>
      <name>decimation</name>
      <longflag>--decimation</longflag>
      <label>Decimation factor</label>
      <description>Fraction of triangles removed, 0 to 0.99.</description>
      <default>0</default>
      <constraints><minimum>0</minimum><maximum>0.99</maximum><step>0.05</step></constraints>
    </double>
    <integer>
      <name>points</name>
      <label>Points</label>
      <channel>output</channel>
      <description>Points of the surface.</description>
    </integer>
    <integer>
      <name>triangles</name>
      <label>Triangles</label>
      <channel>output</channel>
      <description>Triangles of the surface.</description>
    </integer>
    <double>
      <name>volume_mm3</name>
      <label>Enclosed volume (mm3)</label>
      <channel>output</channel>
      <description>Volume enclosed by the surface.</description>
    </double>
  </parameters>
</executable>
"""


def labelmap_surface(mask: np.ndarray, ijk_to_lps: np.ndarray, smoothing: float, decimation: float):
    """A vtkPolyData (LPS) of a binary mask, through slicer-core's conversion rule."""
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    from slicer_core.vtkSegmentationCore import (
        vtkBinaryLabelmapToClosedSurfaceConversionRule,
        vtkOrientedImageData,
        vtkSegment,
        vtkSegmentation,
        vtkSegmentationConverter,
        vtkSegmentationConverterFactory,
    )
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonCore import VTK_UNSIGNED_CHAR
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    # Slicer's Segmentations module registers its rules at start-up; alone, we do it here.
    factory = vtkSegmentationConverterFactory.GetInstance()
    if not any(
        factory.GetConverterRules()[n].GetName() == vtkBinaryLabelmapToClosedSurfaceConversionRule().GetName()
        for n in range(len(factory.GetConverterRules()))
    ):
        factory.RegisterConverterRule(vtkBinaryLabelmapToClosedSurfaceConversionRule())

    image = vtkOrientedImageData()
    k, j, i = mask.shape
    image.SetDimensions(i, j, k)
    scalars = numpy_to_vtk(np.ascontiguousarray(mask, dtype=np.uint8).ravel(), deep=True, array_type=VTK_UNSIGNED_CHAR)
    image.GetPointData().SetScalars(scalars)
    matrix = vtkMatrix4x4()
    for row in range(4):
        for col in range(4):
            matrix.SetElement(row, col, float(ijk_to_lps[row, col]))
    image.SetImageToWorldMatrix(matrix)

    segmentation = vtkSegmentation()
    labelmap_name = vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    surface_name = vtkSegmentationConverter.GetClosedSurfaceRepresentationName()
    segmentation.SetSourceRepresentationName(labelmap_name)
    segment = vtkSegment()
    segment.SetName("label")
    segment.AddRepresentation(labelmap_name, image)
    segmentation.AddSegment(segment, "label")
    segmentation.SetConversionParameter("Smoothing factor", str(smoothing))
    segmentation.SetConversionParameter("Decimation factor", str(decimation))
    if not segmentation.CreateRepresentation(surface_name):
        raise SlicerCloudError("Slicer's labelmap-to-surface conversion failed.", status=500)
    return segmentation.GetSegment("label").GetRepresentation(surface_name)


def write_polydata(polydata, path: Path) -> None:
    from vtkmodules.vtkIOGeometry import vtkOBJWriter, vtkSTLWriter
    from vtkmodules.vtkIOLegacy import vtkPolyDataWriter
    from vtkmodules.vtkIOPLY import vtkPLYWriter
    from vtkmodules.vtkIOXML import vtkXMLPolyDataWriter

    writers = {".stl": vtkSTLWriter, ".obj": vtkOBJWriter, ".vtp": vtkXMLPolyDataWriter, ".vtk": vtkPolyDataWriter, ".ply": vtkPLYWriter}
    writer_class = writers.get(path.suffix.lower())
    if writer_class is None:
        raise SlicerCloudError(f"Cannot write a model as {path.suffix}: use {', '.join(writers)}.")
    with atomic_output(path) as tmp:
        writer = writer_class()
        writer.SetFileName(str(tmp))
        writer.SetInputData(polydata)
        if hasattr(writer, "SetFileTypeToBinary"):
            writer.SetFileTypeToBinary()
        if not writer.Write():
            raise SlicerCloudError(f"Writing {path.name} failed.", status=500)


def run(values: dict[str, Any], progress: Progress) -> dict[str, Any]:
    volume = load_scalar(values["input"])
    label = values["label"]
    mask = volume.array != 0 if label == 0 else volume.array == label
    if not mask.any():
        raise SlicerCloudError(f"The label map has no voxel with label {label}." if label else "The label map is empty.")
    progress(0.1, "making the surface")
    polydata = labelmap_surface(mask, volume.ijk_to_lps(), values["smoothing"], values["decimation"])
    progress(0.8, "writing the model")
    write_polydata(polydata, Path(values["output"]))
    from vtkmodules.vtkFiltersCore import vtkMassProperties, vtkTriangleFilter

    triangles = vtkTriangleFilter()
    triangles.SetInputData(polydata)
    mass = vtkMassProperties()
    mass.SetInputConnection(triangles.GetOutputPort())
    mass.Update()
    return {"points": int(polydata.GetNumberOfPoints()), "triangles": int(polydata.GetNumberOfPolys()),
            "volume_mm3": round(float(mass.GetVolume()), 4)}


if __name__ == "__main__":
    run_module(NAME, XML, run)
