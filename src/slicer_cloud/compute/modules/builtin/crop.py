"""crop: keeps the part of a volume inside a box given as centre and radius in millimetres."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from slicer_cloud.compute.modules.builtin._program import Progress, run_module
from slicer_cloud.compute.modules.builtin._volumes import load, save
from slicer_cloud.errors import SlicerCloudError

NAME = "crop"
XML = """<?xml version="1.0" encoding="utf-8"?>
<executable>
  <category>Converters</category>
  <title>Crop</title>
  <description>Keeps the voxels inside a region (centre and radius in millimetres); the geometry stays in place.</description>
  <version>1.0</version>
  <contributor>slicer-cloud</contributor>
  <parameters>
    <label>Input and output</label>
    <image fileExtensions=".nrrd,.nii.gz,.nii,.mha">
      <name>input</name>
      <label>Input volume</label>
      <channel>input</channel>
      <index>0</index>
      <description>The volume (or label map) to crop.</description>
    </image>
    <image fileExtensions=".nrrd,.nii.gz,.nii,.mha">
      <name>output</name>
      <label>Output volume</label>
      <channel>output</channel>
      <index>1</index>
      <description>The cropped volume.</description>
    </image>
  </parameters>
  <parameters>
    <label>Region</label>
    <region coordinateSystem="lps">
      <name>region</name>
      <longflag>--region</longflag>
      <label>Region</label>
      <description>Centre x, y, z and radius x, y, z in millimetres (LPS).</description>
    </region>
    <integer-vector>
      <name>dimensions</name>
      <label>Output dimensions</label>
      <channel>output</channel>
      <description>Size of the cropped volume (i, j, k).</description>
    </integer-vector>
  </parameters>
</executable>
"""


def run(values: dict[str, Any], progress: Progress) -> dict[str, Any]:
    region = values.get("region")
    if region is None:
        raise SlicerCloudError("Give --region centre x,y,z,radius x,y,z.")
    volume = load(values["input"])
    center, radius = np.array(region[:3]), np.array(region[3:])
    to_ijk = np.linalg.inv(volume.ijk_to_lps())
    corners = np.array([center + np.array(signs) * radius for signs in itertools.product((-1, 1), repeat=3)])
    ijk = (to_ijk[:3, :3] @ corners.T).T + to_ijk[:3, 3]
    low = np.maximum(np.floor(ijk.min(axis=0) + 1e-6).astype(int), 0)
    high = np.minimum(np.ceil(ijk.max(axis=0) - 1e-6).astype(int), np.array(volume.dimensions) - 1)
    if np.any(high < low):
        raise SlicerCloudError("The region does not overlap the volume.")
    progress(0.4, "cropping")
    array = volume.array[low[2] : high[2] + 1, low[1] : high[1] + 1, low[0] : high[0] + 1]
    origin = volume.ijk_to_lps() @ np.array([*low, 1.0])
    save(values["output"], volume.with_array(np.ascontiguousarray(array), origin=tuple(origin[:3])))
    return {"dimensions": [int(n) for n in (high - low + 1)]}


if __name__ == "__main__":
    run_module(NAME, XML, run)
