"""median_filter: replaces each voxel by the median of its neighbourhood (removes speckle and
keeps edges)."""

from __future__ import annotations

from typing import Any

from slicer_cloud.compute.modules.builtin._program import Progress, run_module
from slicer_cloud.compute.modules.builtin._volumes import load_scalar, save
from slicer_cloud.errors import SlicerCloudError

NAME = "median_filter"
XML = """<?xml version="1.0" encoding="utf-8"?>
<executable>
  <category>Filtering</category>
  <title>Median Filter</title>
  <description>Replaces each voxel by the median of the box of (2r+1) voxels around it along each axis.</description>
  <version>1.0</version>
  <contributor>slicer-cloud</contributor>
  <parameters>
    <label>Input and output</label>
    <image type="scalar" fileExtensions=".nrrd,.nii.gz,.nii,.mha">
      <name>input</name>
      <label>Input volume</label>
      <channel>input</channel>
      <index>0</index>
      <description>The volume to filter.</description>
    </image>
    <image type="scalar" fileExtensions=".nrrd,.nii.gz,.nii,.mha">
      <name>output</name>
      <label>Output volume</label>
      <channel>output</channel>
      <index>1</index>
      <description>The filtered volume (same voxel type).</description>
    </image>
  </parameters>
  <parameters>
    <label>Neighbourhood</label>
    <integer-vector>
      <name>radius</name>
      <longflag>--radius</longflag>
      <flag>-r</flag>
      <label>Radius (voxels)</label>
      <description>Radius along i, j and k, in voxels (0 leaves an axis alone).</description>
      <default>1,1,1</default>
      <constraints><minimum>0</minimum><maximum>10</maximum><step>1</step></constraints>
    </integer-vector>
  </parameters>
</executable>
"""


def run(values: dict[str, Any], progress: Progress) -> dict[str, Any]:
    from scipy import ndimage

    radius = values["radius"]
    if len(radius) != 3:
        raise SlicerCloudError(f"radius needs 3 values (i, j, k), got {len(radius)}.")
    volume = load_scalar(values["input"])
    progress(0.2, "filtering")
    size = [2 * r + 1 for r in reversed(radius)]  # array order k, j, i
    filtered = ndimage.median_filter(volume.array, size=size, mode="nearest")
    progress(0.8, "writing")
    save(values["output"], volume.with_array(filtered))
    return {}


if __name__ == "__main__":
    run_module(NAME, XML, run)
