"""``slicer-cloud desktop install-slicer``: fetch an official Slicer release for Linux, verify it
and unpack it into the cache, where ``slicer-cloud desktop`` finds it.

Slicer's download server answers ``GET {base}/find?os=linux&stability=release[&version=X.Y.Z]``
with a JSON record of the release (``version``, ``arch``, ``size``, ``sha512``, and a
``download_url`` that may be relative to the server). The archive is streamed to a partial
file while its SHA-512 is computed, compared, then unpacked into a temporary folder that is
renamed into place: a release folder is there complete or not at all.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx

from slicer_cloud.desktop.programs import installed_releases_dir
from slicer_cloud.desktop.settings import DesktopSettings
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store.atomic import atomic_output

log = logging.getLogger(__name__)

_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")
_CHUNK = 1024 * 1024
#: an official Linux release is about 300-600 MB; refuse anything wildly larger
MAX_ARCHIVE_BYTES = 4 * 1024**3


@dataclass(frozen=True)
class Release:
    version: str
    download_url: str
    sha512: str
    size: int | None
    name: str


def _client(settings: DesktopSettings) -> httpx.Client:
    timeout = httpx.Timeout(settings.download_read_timeout_s, connect=settings.download_connect_timeout_s)
    return httpx.Client(timeout=timeout, follow_redirects=True, headers={"User-Agent": "slicer-cloud"})


def _offline(base: str, error: Exception) -> SlicerCloudError:
    return SlicerCloudError(
        f"Cannot reach Slicer's download server at {base} ({type(error).__name__}: {error}). "
        "This machine seems to have no internet access. Download Slicer for Linux on another "
        "machine (https://download.slicer.org), unpack it here, and start the desktop with "
        "--slicer /path/to/Slicer (or set SLICER_EXECUTABLE).",
        status=503,
    )


def find_release(client: httpx.Client, base: str, version: str | None) -> Release:
    params = {"os": "linux", "stability": "release"}
    if version:
        if not _VERSION.match(version):
            raise SlicerCloudError(f"--version must look like 5.8.1, not {version!r}.")
        params["version"] = version
    url = base.rstrip("/") + "/find"
    try:
        response = client.get(url, params=params)
    except httpx.TransportError as error:
        raise _offline(base, error) from None
    if response.status_code == 404:
        raise SlicerCloudError(f"No Slicer release {version or ''} for Linux on {base}.".replace("  ", " "), status=404)
    if response.status_code != 200:
        raise SlicerCloudError(f"Slicer's download server answered HTTP {response.status_code} for {url}.", status=502)
    try:
        record = response.json()
        release = Release(
            version=str(record["version"]),
            download_url=urljoin(base.rstrip("/") + "/", str(record["download_url"])),
            sha512=str(record.get("sha512") or ""),
            size=int(record["size"]) if record.get("size") else None,
            name=str(record.get("name") or f"Slicer-{record['version']}-linux-amd64.tar.gz"),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise SlicerCloudError(f"Slicer's download server sent a release record this version does not understand ({error}).", status=502) from None
    if not _VERSION.match(release.version):
        raise SlicerCloudError(f"Slicer's download server named an odd version {release.version!r}.", status=502)
    if version and not (release.version == version or release.version.startswith(version + ".")):
        raise SlicerCloudError(f"Asked for Slicer {version}, the server offered {release.version}.", status=404)
    if not re.fullmatch(r"[0-9a-fA-F]{128}", release.sha512):
        raise SlicerCloudError(f"The server gives no SHA-512 checksum for Slicer {release.version}, so it cannot be verified; not installing it.", status=502)
    return release


def download(client: httpx.Client, base: str, release: Release, target: Path) -> Path:
    """Stream the archive to ``target`` (complete and verified, or absent)."""
    digest = hashlib.sha512()
    limit = min(MAX_ARCHIVE_BYTES, int(release.size * 1.01) + _CHUNK) if release.size else MAX_ARCHIVE_BYTES
    received = 0
    try:
        with atomic_output(target) as partial, open(partial, "wb") as out:
            with client.stream("GET", release.download_url) as response:
                if response.status_code != 200:
                    raise SlicerCloudError(f"Downloading Slicer {release.version} failed: HTTP {response.status_code}.", status=502)
                for chunk in response.iter_bytes(_CHUNK):
                    received += len(chunk)
                    if received > limit:
                        raise SlicerCloudError(f"The download of Slicer {release.version} is larger than announced; stopped.", status=502)
                    digest.update(chunk)
                    out.write(chunk)
            out.flush()
            if release.size and received != release.size:
                raise SlicerCloudError(f"The download of Slicer {release.version} is incomplete ({received} of {release.size} bytes).", status=502)
            if digest.hexdigest().lower() != release.sha512.lower():
                raise SlicerCloudError(f"The download of Slicer {release.version} does not match its SHA-512 checksum; not installing it.", status=502)
    except httpx.TransportError as error:
        raise _offline(base, error) from None
    return target


def unpack(archive: Path, dest: Path, version: str) -> Path:
    """Unpack into ``dest/Slicer-VERSION-linux-amd64`` through a temporary folder; returns the
    Slicer executable."""
    final = dest / f"Slicer-{version}-linux-amd64"
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest))
    try:
        with tarfile.open(archive, "r:*") as tar:
            # 'data' refuses absolute paths, '..', device files and links leaving the folder.
            tar.extractall(staging, filter="data")
        roots = [p for p in staging.iterdir() if p.is_dir()]
        top = roots[0] if len(roots) == 1 and not (staging / "Slicer").exists() else staging
        executable = top / "Slicer"
        if not executable.is_file():
            raise SlicerCloudError(f"The Slicer {version} archive has no Slicer executable at its top.", status=502)
        executable.chmod(executable.stat().st_mode | 0o111)
        if final.exists():
            shutil.rmtree(final)
        os.replace(top, final)
    except tarfile.TarError as error:
        raise SlicerCloudError(f"The Slicer {version} archive cannot be unpacked: {error}.", status=502) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final / "Slicer"


def install_slicer(version: str | None = None, dest: Path | None = None, settings: DesktopSettings | None = None) -> Path:
    """Install (or find already installed) an official Slicer release; returns its executable."""
    settings = settings or DesktopSettings()
    dest = Path(dest) if dest else installed_releases_dir(settings.cache_dir)
    dest.mkdir(parents=True, exist_ok=True)
    base = settings.slicer_download_url
    with _client(settings) as client:
        release = find_release(client, base, version)
        executable = dest / f"Slicer-{release.version}-linux-amd64" / "Slicer"
        if executable.is_file():
            log.info("Slicer %s is already installed in %s.", release.version, executable.parent)
            return executable
        log.info("Downloading Slicer %s (%s MB) ...", release.version, f"{release.size / 1e6:.0f}" if release.size else "?")
        archive = download(client, base, release, dest / "downloads" / Path(release.name).name)
    try:
        return unpack(archive, dest, release.version)
    finally:
        archive.unlink(missing_ok=True)
