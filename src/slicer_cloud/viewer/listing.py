"""What the data panel lists: images and DICOM folders under the data root, by name only.

Listing never parses file contents beyond the few bytes that tell a DICOM file apart, so a
folder of thousands of files lists quickly and untrusted files are not read here.
"""

from __future__ import annotations

from pathlib import Path

from slicer_cloud.core.images import image_kind
from slicer_cloud.store import DataRoot

_ICONS = {"volume": "mdi-cube-outline", "segmentation": "mdi-shape-outline", "dicom": "mdi-folder-image"}
_NOTES = {"volume": "volume", "segmentation": "segmentation", "dicom": "DICOM folder"}


def list_data_files(data_root: DataRoot, *, max_entries: int = 2000) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = []
    dicom_folders: list[Path] = []
    for path in data_root.walk(max_entries=20 * max_entries):
        if any(folder in path.parents for folder in dicom_folders):
            continue
        if path.is_dir() and not any(child.is_file() for child in _first_children(path)):
            continue  # folders of folders: their contents are listed themselves
        kind = image_kind(path)
        if kind is None:
            continue
        if kind == "dicom":
            dicom_folders.append(path)
        note = _NOTES[kind]
        if path.is_file():
            note += f", {_human_size(path.stat().st_size)}"
        entries.append({"path": data_root.relative(path), "kind": kind, "icon": _ICONS[kind], "note": note})
        if len(entries) >= max_entries:
            break
    return entries


def _first_children(folder: Path, limit: int = 50) -> list[Path]:
    children = []
    for n, child in enumerate(folder.iterdir()):
        if n >= limit:
            break
        children.append(child)
    return children


def _human_size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"
