"""threshold: voxels whose value lies in [lower, upper] become 1, all others 0."""

from __future__ import annotations

from typing import Any

from slicer_cloud.compute.modules.builtin._program import Progress, run_module
from slicer_cloud.compute.modules.builtin._volumes import label_array, load_scalar, save
from slicer_cloud.errors import SlicerCloudError

NAME = "threshold"
XML = """<?xml version="1.0" encoding="utf-8"?>
<executable>
  <category>Segmentation</category>
  <title>Threshold</title>
  <description>Makes a label map: voxels whose value lies in [lower, upper] become 1, all others 0.</description>
  <version>1.0</version>
  <contributor>slicer-cloud</contributor>
  <parameters>
    <label>Input and output</label>
    <image type="scalar" fileExtensions=".nrrd,.nii.gz,.nii,.mha">
      <name>input</name>
      <label>Input volume</label>
      <channel>input</channel>
      <index>0</index>
      <description>The volume to threshold.</description>
    </image>
    <image type="label" fileExtensions=".nrrd,.nii.gz,.nii,.mha">
      <name>output</name>
      <label>Output label map</label>
      <channel>output</channel>
      <index>1</index>
      <description>1 inside [lower, upper], 0 elsewhere.</description>
    </image>
  </parameters>
  <parameters>
    <label>Threshold</label>
    <double>
      <name>lower</name>
      <longflag>--lower</longflag>
      <flag>-l</flag>
      <label>Lower</label>
      <description>Smallest value labelled 1 (inclusive).</description>
      <default>0</default>
    </double>
    <double>
      <name>upper</name>
      <longflag>--upper</longflag>
      <flag>-u</flag>
      <label>Upper</label>
      <description>Largest value labelled 1 (inclusive).</description>
      <default>1000000</default>
    </double>
    <integer>
      <name>voxel_count</name>
      <label>Voxels labelled</label>
      <channel>output</channel>
      <description>How many voxels became 1.</description>
    </integer>
  </parameters>
</executable>
"""


def run(values: dict[str, Any], progress: Progress) -> dict[str, Any]:
    lower, upper = values["lower"], values["upper"]
    if lower > upper:
        raise SlicerCloudError(f"lower ({lower:g}) is greater than upper ({upper:g}).")
    volume = load_scalar(values["input"])
    progress(0.3, "thresholding")
    mask = (volume.array >= lower) & (volume.array <= upper)
    progress(0.6, "writing")
    save(values["output"], volume.with_array(label_array(mask)))
    return {"voxel_count": int(mask.sum())}


if __name__ == "__main__":
    run_module(NAME, XML, run)
