"""Paths under a data root that can never leave it (no ``..``, no absolute paths, no symlink
escape)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from slicer_cloud.errors import SlicerCloudError

#: names a listing never shows: hidden files, partial uploads, caches.
_HIDDEN_PREFIXES = (".",)


@dataclass(frozen=True)
class DataRoot:
    """A folder users may read from and write into, and nothing outside it."""

    root: Path

    def __post_init__(self) -> None:
        resolved = Path(self.root).expanduser().resolve()
        if not resolved.is_dir():
            raise SlicerCloudError(f"The data folder {self.root} does not exist or is not a folder.", status=500)
        object.__setattr__(self, "root", resolved)

    def resolve(self, relative: str | os.PathLike[str], *, must_exist: bool = True) -> Path:
        """The absolute path of ``relative`` inside the root; refuses anything that leaves it."""
        text = str(relative).replace("\\", "/")
        if "\x00" in text:
            raise SlicerCloudError("The path contains a NUL character.", status=400)
        pure = PurePosixPath(text)
        if pure.is_absolute() or any(part == ".." for part in pure.parts):
            raise SlicerCloudError(f"The path {text!r} is outside the data folder.", status=403)
        candidate = (self.root / pure).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            # a symlink inside the root that points outside it
            raise SlicerCloudError(f"The path {text!r} is outside the data folder.", status=403)
        if must_exist and not candidate.exists():
            raise SlicerCloudError(f"No such file in the data folder: {text}", status=404)
        return candidate

    def relative(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

    def walk(self, *, max_entries: int = 5000) -> list[Path]:
        """Files and folders under the root, hidden ones and symlink escapes left out, sorted."""
        found: list[Path] = []
        for directory, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(_HIDDEN_PREFIXES))
            base = Path(directory)
            for name in sorted(dirnames) + sorted(filenames):
                if name.startswith(_HIDDEN_PREFIXES):
                    continue
                path = base / name
                real = path.resolve()
                if real != self.root and self.root not in real.parents:
                    continue  # a symlink pointing outside the root
                found.append(path)
                if len(found) >= max_entries:
                    return found
        return found
