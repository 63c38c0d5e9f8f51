"""The noVNC client library served to the browser, pinned by content.

We serve the library that Debian's ``novnc`` package installs (its ``core/`` ES modules and the
``vendor/pako`` inflate code they import), not the package's own page. A Debian release fixes
that package's version, but a distribution upgrade, a backport or a hand-copied folder can
change it under us; so at start we hash every file we would serve and compare with the digest
recorded for the version our page was written and tested against. A mismatch stops the service
with a clear message unless ``SLICER_CLOUD_NOVNC_UNPINNED=1`` says to serve it anyway.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from slicer_cloud.doctor import HINT
from slicer_cloud.errors import SlicerCloudError

log = logging.getLogger(__name__)

#: Debian bookworm ``novnc`` 1:1.3.0-1 (upstream noVNC v1.3.0): 43 files under core/ and vendor/.
PINNED_VERSION = "1.3.0"
PINNED_DIGEST = "85c85b470b9d18bcff9cb75e23cec60fde60b4c43c50cd00b32589af1f44cefe"

#: the folders of the library the page imports; nothing else of the package is served.
SERVED_FOLDERS = ("core", "vendor")


@dataclass(frozen=True)
class NoVncLibrary:
    root: Path
    version: str
    digest: str
    #: URL path below ``novnc/`` -> file; the only files the web layer will serve.
    files: dict[str, Path] = field(repr=False)

    @property
    def pinned(self) -> bool:
        return self.digest == PINNED_DIGEST


def library_digest(root: Path) -> tuple[str, dict[str, Path]]:
    """A digest over the relative path and content of every served ``.js`` file under ``root``."""
    files: dict[str, Path] = {}
    for folder in SERVED_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.js")):
            if path.is_file() and not path.is_symlink():
                files[path.relative_to(root).as_posix()] = path
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(rel.encode() + b"\0" + hashlib.sha256(files[rel].read_bytes()).digest())
    return digest.hexdigest(), files


def load_novnc(root: Path, *, allow_unpinned: bool = False) -> NoVncLibrary:
    """Find and check the noVNC library at ``root``."""
    root = Path(root)
    if not (root / "core" / "rfb.js").is_file():
        raise SlicerCloudError(
            f"The noVNC client library was not found in {root}. Install it (Debian/Ubuntu: "
            "apt-get install novnc) or point SLICER_CLOUD_NOVNC_DIR at a noVNC "
            f"{PINNED_VERSION} folder (the one holding core/rfb.js). {HINT}",
            status=500,
        )
    digest, files = library_digest(root)
    if digest == PINNED_DIGEST:
        return NoVncLibrary(root=root, version=PINNED_VERSION, digest=digest, files=files)
    if not allow_unpinned:
        raise SlicerCloudError(
            f"The noVNC library in {root} is not the pinned version {PINNED_VERSION} (its files "
            "differ). Install noVNC 1.3.0 there, point SLICER_CLOUD_NOVNC_DIR at a copy of it, or "
            "set SLICER_CLOUD_NOVNC_UNPINNED=1 to serve this one anyway (untested).",
            status=500,
            detail=f"digest {digest}, expected {PINNED_DIGEST}",
        )
    log.warning("Serving an unpinned noVNC library from %s (digest %s); the page is tested with %s.", root, digest[:12], PINNED_VERSION)
    return NoVncLibrary(root=root, version="unpinned", digest=digest, files=files)
