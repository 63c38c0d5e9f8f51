"""The built-in CLI modules: small Python programs, each with its Execution Model XML.

Run one alone: ``python -m slicer_cloud.compute.modules.builtin.threshold --xml``. To load them
in desktop Slicer, write executable shims into a folder and add it to Slicer's module paths:
``python -m slicer_cloud.compute.modules.builtin --export FOLDER``.
"""

from __future__ import annotations

import importlib
import stat
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

NAMES = (
    "threshold",
    "otsu_threshold",
    "gaussian_smoothing",
    "median_filter",
    "resample",
    "crop",
    "largest_island",
    "labelmap_to_model",
    "segment_statistics",
)
PACKAGE = __name__


def load(name: str) -> ModuleType:
    if name not in NAMES:
        raise KeyError(name)
    return importlib.import_module(f"{PACKAGE}.{name}")


def command(name: str) -> list[str]:
    """The argument list that starts built-in module ``name``."""
    return [sys.executable, "-m", f"{PACKAGE}.{name}"]


def call(name: str, **parameters: Any) -> dict[str, Any]:
    """Run a built-in module's function in this process (what a job runs, minus the process)."""
    from slicer_cloud.compute.modules.builtin._program import call as _call

    module = load(name)
    return _call(name, module.XML, module.run, **parameters)


def export_shims(folder: Path) -> list[Path]:
    """Write one executable per built-in module into ``folder`` (for desktop Slicer or --modules-path)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in NAMES:
        shim = folder / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m {PACKAGE}.{name} "$@"\n')
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        written.append(shim)
    return written


__all__ = ["NAMES", "call", "command", "export_shims", "load"]
