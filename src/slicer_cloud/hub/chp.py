"""configurable-http-proxy, JupyterHub's proxy, comes from npm: found on PATH, or installed once
into the slicer-cloud cache with ``npm install --prefix`` (never globally)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from slicer_cloud.config import default_cache_dir
from slicer_cloud.doctor import HINT
from slicer_cloud.errors import SlicerCloudError

PACKAGE = "configurable-http-proxy"
VERSION = "5.3.0"  # tested with JupyterHub 5 and 6
INSTALL_TIMEOUT_S = 600


def npm_prefix(cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / "npm"


def installed_proxy(cache_dir: Path | None = None) -> Path | None:
    local = npm_prefix(cache_dir) / "node_modules" / ".bin" / PACKAGE
    if local.exists():
        return local
    found = shutil.which(PACKAGE)
    return Path(found) if found else None


def ensure_proxy(cache_dir: Path | None = None) -> Path:
    """The proxy's executable; installs it into the cache first when it is nowhere."""
    found = installed_proxy(cache_dir)
    if found is not None:
        return found
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise SlicerCloudError(
            f"JupyterHub's proxy (configurable-http-proxy) needs Node.js: install the Debian packages nodejs and npm. {HINT}",
            status=500,
        )
    prefix = npm_prefix(cache_dir)
    prefix.mkdir(parents=True, exist_ok=True)
    print(f"Installing {PACKAGE} {VERSION} into {prefix} (once) ...", flush=True)
    command = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--loglevel=error", f"{PACKAGE}@{VERSION}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, env={**os.environ, "NO_UPDATE_NOTIFIER": "1"})
    except subprocess.TimeoutExpired:
        raise SlicerCloudError(f"npm install {PACKAGE} took longer than {INSTALL_TIMEOUT_S} s.", status=500) from None
    if done.returncode != 0:
        raise SlicerCloudError(f"npm install {PACKAGE} failed: {done.stderr.strip()[-800:]}", status=500)
    found = installed_proxy(cache_dir)
    if found is None:
        raise SlicerCloudError(f"npm installed {PACKAGE} but its command is missing under {prefix}.", status=500)
    return found
