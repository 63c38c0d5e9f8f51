"""Display presets: slice window/level and volume rendering, by the names users see.

The window/level values are those of Slicer's Volumes module presets.
"""

from __future__ import annotations

from slicer_cloud.errors import SlicerCloudError

#: name -> (window, level) in Hounsfield units.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "ct-brain": (100.0, 50.0),
    "ct-abdomen": (350.0, 40.0),
    "ct-lung": (1400.0, -500.0),
    "ct-bone": (1000.0, 400.0),
}

WINDOW_PRESET_TITLES: dict[str, str] = {
    "ct-brain": "CT brain",
    "ct-abdomen": "CT abdomen",
    "ct-lung": "CT lung",
    "ct-bone": "CT bone",
    "auto": "Automatic",
}

DEFAULT_VOLUME_PRESET = "CT-Chest-Contrast-Enhanced"
DEFAULT_MR_VOLUME_PRESET = "MR-Default"


def window_level(preset: str) -> tuple[float, float] | None:
    """(window, level) of a preset; None for ``auto`` (Slicer's automatic window/level)."""
    key = preset.lower()
    if key == "auto":
        return None
    try:
        return WINDOW_PRESETS[key]
    except KeyError:
        names = ", ".join([*WINDOW_PRESETS, "auto"])
        raise SlicerCloudError(f"Unknown window/level preset {preset!r}; choose one of: {names}.", status=422) from None


def looks_like_ct(scalar_range: tuple[float, float]) -> bool:
    """CT volumes hold Hounsfield units: air near -1000. MR and others start near 0."""
    low, high = scalar_range
    return low <= -500 and high >= 100
