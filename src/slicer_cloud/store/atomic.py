"""Atomic writes: a file becomes visible only when complete (temp file, fsync, rename)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterable, Iterator
from pathlib import Path

from slicer_cloud.errors import SlicerCloudError

_CHUNK = 1024 * 1024


@contextlib.contextmanager
def atomic_output(target: Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it is fsynced and renamed onto
    ``target``, on failure it is removed. Readers never see a half-written ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and target.exists():
        raise SlicerCloudError(f"{target.name} already exists.", status=409)
    # Keep the real suffix (.nii.gz, .seg.nrrd) so writers that pick a format by name still work.
    suffix = "".join(target.suffixes) or ".tmp"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name.split('.')[0]}-", suffix=".partial" + suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        if not overwrite and target.exists():
            raise SlicerCloudError(f"{target.name} already exists.", status=409)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


async def stream_to_file(chunks: AsyncIterable[bytes], target: Path, *, max_bytes: int, overwrite: bool = False) -> int:
    """Write an async stream of bytes to ``target`` atomically, never holding it in memory.

    Raises a 413 :class:`SlicerCloudError` (and leaves nothing behind) past ``max_bytes``.
    """
    written = 0
    with atomic_output(target, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as out:
            async for chunk in chunks:
                written += len(chunk)
                if written > max_bytes:
                    raise SlicerCloudError(
                        f"The upload is larger than the limit of {max_bytes / 1024**2:.0f} MiB.", status=413
                    )
                out.write(chunk)
    return written
