"""otsu_threshold: splits a volume in two classes at the threshold that maximises the
between-class variance of its histogram (Otsu's method); voxels above it become 1."""

from __future__ import annotations

from typing import Any

import numpy as np

from slicer_cloud.compute.modules.builtin._program import Progress, run_module
from slicer_cloud.compute.modules.builtin._volumes import label_array, load_scalar, save
from slicer_cloud.errors import SlicerCloudError

NAME = "otsu_threshold"
XML = """<?xml version="1.0" encoding="utf-8"?>
<executable>
  <category>Segmentation</category>
  <title>Otsu Threshold</title>
  <description>Finds the threshold that best separates two classes of intensity (Otsu's method); voxels above it become 1.</description>
  <version>1.0</version>
  <contributor>slicer-cloud</contributor>
  <parameters>
    <label>Input and output</label>
    <image type="scalar" fileExtensions=".nrrd,.nii.gz,.nii,.mha">
      <name>input</name>
      <label>Input volume</label>
      <channel>input</channel>
      <index>0</index>
      <description>The volume to split.</description>
    </image>
    <image type="label" fileExtensions=".nrrd,.nii.gz,.nii,.mha">
      <name>output</name>
      <label>Output label map</label>
      <channel>output</channel>
      <index>1</index>
      <description>1 above the threshold, 0 elsewhere.</description>
    </image>
  </parameters>
  <parameters>
    <label>Histogram</label>
    <integer>
      <name>bins</name>
      <longflag>--bins</longflag>
      <label>Histogram bins</label>
      <description>Number of histogram bins.</description>
      <default>256</default>
      <constraints><minimum>2</minimum><maximum>65536</maximum><step>1</step></constraints>
    </integer>
    <double>
      <name>threshold</name>
      <label>Threshold</label>
      <channel>output</channel>
      <description>The threshold found.</description>
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


def otsu(values: np.ndarray, bins: int) -> float:
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values.ravel()
    if finite.size == 0:
        raise SlicerCloudError("The volume has no finite values.")
    low, high = float(finite.min()), float(finite.max())
    if low == high:
        raise SlicerCloudError("The volume is constant: there is nothing to separate.")
    counts, edges = np.histogram(finite, bins=bins, range=(low, high))
    centers = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    mass_low = np.cumsum(counts * centers)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_low = mass_low / weight_low
        mean_high = (mass_low[-1] - mass_low) / weight_high
        between = weight_low * weight_high * (mean_low - mean_high) ** 2
    between = np.nan_to_num(between[:-1], nan=-1.0)
    # Well separated classes leave a plateau of equal scores across the empty bins between
    # them: take its middle rather than the edge of the lower class.
    best = np.flatnonzero(between >= between.max() * (1 - 1e-9))
    middle = best[len(best) // 2] if best.size and np.all(np.diff(best) == 1) else int(np.argmax(between))
    # The threshold is the upper edge of the last bin of the lower class.
    return float(edges[int(middle) + 1])


def run(values: dict[str, Any], progress: Progress) -> dict[str, Any]:
    volume = load_scalar(values["input"])
    progress(0.3, "histogram")
    threshold = otsu(volume.array, values["bins"])
    mask = volume.array > threshold
    progress(0.6, "writing")
    save(values["output"], volume.with_array(label_array(mask)))
    return {"threshold": threshold, "voxel_count": int(mask.sum())}


if __name__ == "__main__":
    run_module(NAME, XML, run)
