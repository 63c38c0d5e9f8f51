"""segment_statistics: per label, the voxel count, the volume in mm3 and mL and (given an
intensity volume) the mean, standard deviation, minimum and maximum intensity."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from slicer_cloud.compute.modules.builtin._program import Progress, run_module
from slicer_cloud.compute.modules.builtin._volumes import load_scalar, same_grid
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store.atomic import atomic_output

NAME = "segment_statistics"
XML = """<?xml version="1.0" encoding="utf-8"?>
<executable>
  <category>Quantification</category>
  <title>Segment Statistics</title>
  <description>For each label of a label map: voxel count, volume (mm3 and mL) and, with an intensity volume, mean, standard deviation, minimum and maximum intensity. Writes a CSV table.</description>
  <version>1.0</version>
  <contributor>slicer-cloud</contributor>
  <parameters>
    <label>Input and output</label>
    <image type="label" fileExtensions=".nrrd,.nii.gz,.nii,.mha">
      <name>segmentation</name>
      <label>Label map</label>
      <channel>input</channel>
      <index>0</index>
      <description>Label map: each non-zero value is one segment.</description>
    </image>
    <table fileExtensions=".csv">
      <name>table</name>
      <label>Statistics table</label>
      <channel>output</channel>
      <index>1</index>
      <description>One row per label (CSV).</description>
    </table>
    <image type="scalar" fileExtensions=".nrrd,.nii.gz,.nii,.mha">
      <name>intensity</name>
      <longflag>--intensity</longflag>
      <label>Intensity volume</label>
      <channel>input</channel>
      <description>Optional: the volume whose intensities are measured (same grid as the label map).</description>
    </image>
  </parameters>
  <parameters>
    <label>Results</label>
    <integer-vector>
      <name>labels</name>
      <label>Labels</label>
      <channel>output</channel>
      <description>The labels found, in increasing order.</description>
    </integer-vector>
    <integer-vector>
      <name>voxel_counts</name>
      <label>Voxel counts</label>
      <channel>output</channel>
      <description>Voxels per label.</description>
    </integer-vector>
    <double-vector>
      <name>volumes_mm3</name>
      <label>Volumes (mm3)</label>
      <channel>output</channel>
      <description>Volume per label in cubic millimetres.</description>
    </double-vector>
    <double-vector>
      <name>volumes_ml</name>
      <label>Volumes (mL)</label>
      <channel>output</channel>
      <description>Volume per label in millilitres.</description>
    </double-vector>
    <double>
      <name>total_volume_ml</name>
      <label>Total volume (mL)</label>
      <channel>output</channel>
      <description>Volume of all labels together, in millilitres.</description>
    </double>
    <double-vector>
      <name>means</name>
      <label>Mean intensities</label>
      <channel>output</channel>
      <description>Mean intensity per label (with an intensity volume).</description>
    </double-vector>
  </parameters>
</executable>
"""
COLUMNS = ["label", "voxel_count", "volume_mm3", "volume_ml", "mean", "std", "min", "max"]


def statistics(labels_array: np.ndarray, voxel_mm3: float, intensity: np.ndarray | None) -> list[dict[str, Any]]:
    flat = labels_array.ravel()
    if not np.issubdtype(flat.dtype, np.integer):
        if not np.all(np.isfinite(flat)) or not np.all(flat == np.round(flat)):
            raise SlicerCloudError("The label map has non-integer values; give a label map, not an intensity volume.")
        flat = flat.astype(np.int64)
    present = np.unique(flat)
    present = present[present != 0]
    if present.size > 10_000:
        raise SlicerCloudError(f"The label map has {present.size:,} labels; at most 10,000 are measured.")
    rows = []
    values = intensity.ravel().astype(np.float64) if intensity is not None else None
    for label in present:
        selected = flat == label
        count = int(selected.sum())
        row: dict[str, Any] = {"label": int(label), "voxel_count": count,
                               "volume_mm3": count * voxel_mm3, "volume_ml": count * voxel_mm3 / 1000.0}
        if values is not None:
            inside = values[selected]
            row.update(mean=float(inside.mean()), std=float(inside.std()), min=float(inside.min()), max=float(inside.max()))
        rows.append(row)
    return rows


def run(values: dict[str, Any], progress: Progress) -> dict[str, Any]:
    segmentation = load_scalar(values["segmentation"])
    intensity = None
    if values.get("intensity"):
        intensity_volume = load_scalar(values["intensity"])
        if not same_grid(segmentation, intensity_volume):
            raise SlicerCloudError("The intensity volume and the label map do not share the same grid; resample one first.")
        intensity = intensity_volume.array
    progress(0.2, "measuring")
    voxel_mm3 = float(abs(np.linalg.det(segmentation.ijk_to_lps()[:3, :3])))
    rows = statistics(segmentation.array, voxel_mm3, intensity)
    progress(0.8, "writing the table")
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_output(Path(values["table"])) as tmp:
        tmp.write_text(text.getvalue())
    results: dict[str, Any] = {
        "labels": [r["label"] for r in rows],
        "voxel_counts": [r["voxel_count"] for r in rows],
        "volumes_mm3": [round(r["volume_mm3"], 6) for r in rows],
        "volumes_ml": [round(r["volume_ml"], 9) for r in rows],
        "total_volume_ml": round(sum(r["volume_ml"] for r in rows), 9),
    }
    if intensity is not None:
        results["means"] = [round(r["mean"], 6) for r in rows]
    return results


if __name__ == "__main__":
    run_module(NAME, XML, run)
