"""resample: resamples a volume to a new voxel spacing over the same physical extent."""

from __future__ import annotations

from typing import Any

import numpy as np

from slicer_cloud.compute.modules.builtin._program import Progress, run_module
from slicer_cloud.compute.modules.builtin._volumes import load_scalar, save
from slicer_cloud.config import Limits
from slicer_cloud.errors import SlicerCloudError

NAME = "resample"
XML = """<?xml version="1.0" encoding="utf-8"?>
<executable>
  <category>Filtering</category>
  <title>Resample</title>
  <description>Resamples a volume to a new spacing (mm) covering the same physical extent. Use nearest for label maps.</description>
  <version>1.0</version>
  <contributor>slicer-cloud</contributor>
  <parameters>
    <label>Input and output</label>
    <image type="scalar" fileExtensions=".nrrd,.nii.gz,.nii,.mha">
      <name>input</name>
      <label>Input volume</label>
      <channel>input</channel>
      <index>0</index>
      <description>The volume to resample.</description>
    </image>
    <image type="scalar" fileExtensions=".nrrd,.nii.gz,.nii,.mha">
      <name>output</name>
      <label>Output volume</label>
      <channel>output</channel>
      <index>1</index>
      <description>The resampled volume (same voxel type).</description>
    </image>
  </parameters>
  <parameters>
    <label>Sampling</label>
    <double-vector>
      <name>spacing</name>
      <longflag>--spacing</longflag>
      <label>Spacing (mm)</label>
      <description>New spacing along i, j and k, in millimetres.</description>
      <default>1,1,1</default>
      <constraints><minimum>0.01</minimum><maximum>100</maximum><step>0.1</step></constraints>
    </double-vector>
    <string-enumeration>
      <name>interpolation</name>
      <longflag>--interpolation</longflag>
      <label>Interpolation</label>
      <description>nearest (label maps), linear or cubic.</description>
      <default>linear</default>
      <element>nearest</element>
      <element>linear</element>
      <element>cubic</element>
    </string-enumeration>
    <integer-vector>
      <name>dimensions</name>
      <label>Output dimensions</label>
      <channel>output</channel>
      <description>Size of the resampled volume (i, j, k).</description>
    </integer-vector>
  </parameters>
</executable>
"""
_ORDER = {"nearest": 0, "linear": 1, "cubic": 3}


def run(values: dict[str, Any], progress: Progress) -> dict[str, Any]:
    from scipy import ndimage

    new_spacing = np.array(values["spacing"], float)
    if new_spacing.size != 3:
        raise SlicerCloudError(f"spacing needs 3 values (i, j, k), got {new_spacing.size}.")
    volume = load_scalar(values["input"])
    old_spacing = np.array(volume.spacing, float)
    old_dims = np.array(volume.dimensions)
    new_dims = np.maximum(1, np.round(old_dims * old_spacing / new_spacing)).astype(int)
    if int(np.prod(new_dims)) > Limits().max_voxels:
        raise SlicerCloudError(f"The resampled volume would have {int(np.prod(new_dims)):,} voxels, over the limit.", status=413)
    progress(0.2, "resampling")
    # Keep the outer edges of the volume where they were: voxel centres move by half a voxel.
    scale = new_spacing / old_spacing
    shift = 0.5 * scale - 0.5
    order = _ORDER[values["interpolation"]]
    source = volume.array if order == 0 else volume.array.astype(np.float32)
    resampled = ndimage.affine_transform(
        source, scale[::-1], offset=shift[::-1], output_shape=tuple(new_dims[::-1]), order=order, mode="nearest"
    )
    if np.issubdtype(volume.array.dtype, np.integer) and order:
        info = np.iinfo(volume.array.dtype)
        resampled = np.clip(np.rint(resampled), info.min, info.max)
    resampled = resampled.astype(volume.array.dtype)
    origin = np.array(volume.origin) + np.asarray(volume.direction) @ (shift * old_spacing)
    progress(0.8, "writing")
    save(values["output"], volume.with_array(resampled, spacing=tuple(new_spacing), origin=tuple(origin)))
    return {"dimensions": [int(n) for n in new_dims]}


if __name__ == "__main__":
    run_module(NAME, XML, run)
