"""Reading inputs and writing outputs for the built-in modules, with the configured limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slicer_cloud.compute.imageio import Volume, read_volume, write_volume
from slicer_cloud.config import Limits
from slicer_cloud.errors import SlicerCloudError

IMAGE_EXTENSIONS = ".nrrd,.nii.gz,.nii,.mha,.nhdr,.mhd"


def load(path: str | Path) -> Volume:
    return read_volume(Path(path), Limits())


def load_scalar(path: str | Path) -> Volume:
    volume = load(path)
    if volume.components != 1:
        raise SlicerCloudError(f"{Path(path).name} has {volume.components} components; this module needs a scalar volume.")
    return volume


def save(path: str | Path, volume: Volume) -> None:
    write_volume(Path(path), volume)


def label_array(mask: np.ndarray) -> np.ndarray:
    return mask.astype(np.uint8)


def same_grid(a: Volume, b: Volume) -> bool:
    return (
        a.array.shape[:3] == b.array.shape[:3]
        and np.allclose(a.spacing, b.spacing, rtol=1e-4)
        and np.allclose(a.origin, b.origin, atol=1e-3)
        and np.allclose(a.direction, b.direction, atol=1e-4)
    )
