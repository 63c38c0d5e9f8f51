"""largest_island: keeps the largest connected island of a label map (removes specks)."""

from __future__ import annotations

from typing import Any

import numpy as np

from slicer_cloud.compute.modules.builtin._program import Progress, run_module
from slicer_cloud.compute.modules.builtin._volumes import load_scalar, save
from slicer_cloud.errors import SlicerCloudError

NAME = "largest_island"
XML = """<?xml version="1.0" encoding="utf-8"?>
<executable>
  <category>Segmentation</category>
  <title>Keep Largest Island</title>
  <description>Keeps the largest connected island of non-zero voxels (with their labels); everything else becomes 0.</description>
  <version>1.0</version>
  <contributor>slicer-cloud</contributor>
  <parameters>
    <label>Input and output</label>
    <image type="label" fileExtensions=".nrrd,.nii.gz,.nii,.mha">
      <name>input</name>
      <label>Input label map</label>
      <channel>input</channel>
      <index>0</index>
      <description>The label map to clean.</description>
    </image>
    <image type="label" fileExtensions=".nrrd,.nii.gz,.nii,.mha">
      <name>output</name>
      <label>Output label map</label>
      <channel>output</channel>
      <index>1</index>
      <description>Only the largest island.</description>
    </image>
  </parameters>
  <parameters>
    <label>Connectivity</label>
    <integer-enumeration>
      <name>connectivity</name>
      <longflag>--connectivity</longflag>
      <label>Connectivity</label>
      <description>6: voxels touching by a face are connected; 26: by a face, an edge or a corner.</description>
      <default>6</default>
      <element>6</element>
      <element>18</element>
      <element>26</element>
    </integer-enumeration>
    <integer>
      <name>island_voxels</name>
      <label>Voxels kept</label>
      <channel>output</channel>
      <description>Size of the largest island.</description>
    </integer>
    <integer>
      <name>islands</name>
      <label>Islands found</label>
      <channel>output</channel>
      <description>How many islands there were.</description>
    </integer>
  </parameters>
</executable>
"""
_RANK = {6: 1, 18: 2, 26: 3}


def run(values: dict[str, Any], progress: Progress) -> dict[str, Any]:
    from scipy import ndimage

    volume = load_scalar(values["input"])
    mask = volume.array != 0
    if not mask.any():
        raise SlicerCloudError("The label map is empty: there is no island to keep.")
    progress(0.2, "finding islands")
    structure = ndimage.generate_binary_structure(3, _RANK[values["connectivity"]])
    labels, count = ndimage.label(mask, structure=structure)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    largest = int(np.argmax(sizes))
    kept = np.where(labels == largest, volume.array, 0).astype(volume.array.dtype)
    progress(0.7, "writing")
    save(values["output"], volume.with_array(kept))
    return {"island_voxels": int(sizes[largest]), "islands": int(count)}


if __name__ == "__main__":
    run_module(NAME, XML, run)
