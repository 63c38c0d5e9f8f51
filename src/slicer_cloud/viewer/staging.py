"""The viewer's upload staging: ``DATA/.uploads/<token>/<name>``.

The gateway streams an upload there; the tab's session checks the file and moves it into the
data folder, or removes it. A name sent back by a browser is resolved here, through the data
root, and must be exactly one staged file: a browser can never make a session open, move or
delete anything else. A tab closed between the two steps leaves its staging behind, so the
gateway sweeps staging older than a setting at start and periodically.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import time
from pathlib import Path

from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store import DataRoot

STAGING_DIR = ".uploads"

log = logging.getLogger("slicer_cloud.viewer")


def new_staging_folder(data_root: DataRoot) -> Path:
    """A fresh folder for one upload (not created yet: the atomic writer makes it)."""
    return data_root.root / STAGING_DIR / secrets.token_hex(8)


def resolve_staged(data_root: DataRoot, relative: str) -> Path:
    """The staged file a browser names, or a 403: ``.uploads/<token>/<name>`` and nothing else."""
    path = data_root.resolve(relative, must_exist=False)
    staging = data_root.root / STAGING_DIR
    if path.parent.parent != staging or path.parent.name.startswith("."):
        raise SlicerCloudError("Only staged uploads can be opened this way.", status=403)
    if not path.is_file():
        raise SlicerCloudError("The upload is no longer staged (it expired); upload it again.", status=404)
    return path


def discard_staged(path: Path) -> None:
    """Remove a staged file and its folder (``path`` comes from :func:`resolve_staged`)."""
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()


def sweep_stale(data_root: DataRoot, max_age_s: float, *, now: float | None = None) -> int:
    """Remove staging folders untouched for ``max_age_s``; how many were removed."""
    staging = data_root.root / STAGING_DIR
    if not staging.is_dir():
        return 0
    now = time.time() if now is None else now
    removed = 0
    for entry in staging.iterdir():
        try:
            newest = _newest_change(entry)
        except OSError:
            continue  # removed meanwhile
        if now - newest < max_age_s:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    if removed:
        log.info("removed %d stale upload staging folder(s)", removed)
    return removed


def _newest_change(entry: Path) -> float:
    """The latest modification of a staging folder or of a file in it (an upload still being
    written keeps its folder fresh)."""
    times = [entry.lstat().st_mtime]
    if entry.is_dir() and not entry.is_symlink():
        times += [child.lstat().st_mtime for child in entry.iterdir()]
    return max(times)
