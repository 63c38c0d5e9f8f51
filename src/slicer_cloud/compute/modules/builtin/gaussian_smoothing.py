"""gaussian_smoothing: blurs a volume with a Gaussian whose sigma is given in millimetres."""

from __future__ import annotations

from typing import Any

import numpy as np

from slicer_cloud.compute.modules.builtin._program import Progress, run_module
from slicer_cloud.compute.modules.builtin._volumes import load_scalar, save

NAME = "gaussian_smoothing"
XML = """<?xml version="1.0" encoding="utf-8"?>
<executable>
  <category>Filtering</category>
  <title>Gaussian Smoothing</title>
  <description>Blurs a volume with a Gaussian kernel; sigma is in millimetres, so anisotropic voxels are handled. The output is float32.</description>
  <version>1.0</version>
  <contributor>slicer-cloud</contributor>
  <parameters>
    <label>Input and output</label>
    <image type="scalar" fileExtensions=".nrrd,.nii.gz,.nii,.mha">
      <name>input</name>
      <label>Input volume</label>
      <channel>input</channel>
      <index>0</index>
      <description>The volume to smooth.</description>
    </image>
    <image type="scalar" fileExtensions=".nrrd,.nii.gz,.nii,.mha">
      <name>output</name>
      <label>Output volume</label>
      <channel>output</channel>
      <index>1</index>
      <description>The smoothed volume (float32).</description>
    </image>
  </parameters>
  <parameters>
    <label>Kernel</label>
    <double>
      <name>sigma</name>
      <longflag>--sigma</longflag>
      <flag>-s</flag>
      <label>Sigma (mm)</label>
      <description>Standard deviation of the Gaussian, in millimetres.</description>
      <default>1.0</default>
      <constraints><minimum>0</minimum><maximum>100</maximum><step>0.1</step></constraints>
    </double>
  </parameters>
</executable>
"""


def run(values: dict[str, Any], progress: Progress) -> dict[str, Any]:
    from scipy import ndimage

    volume = load_scalar(values["input"])
    progress(0.2, "smoothing")
    sigma_voxels = [values["sigma"] / s for s in reversed(volume.spacing)]  # array order k, j, i
    smoothed = ndimage.gaussian_filter(volume.array.astype(np.float32), sigma=sigma_voxels, mode="nearest")
    progress(0.7, "writing")
    save(values["output"], volume.with_array(smoothed.astype(np.float32)))
    return {}


if __name__ == "__main__":
    run_module(NAME, XML, run)
