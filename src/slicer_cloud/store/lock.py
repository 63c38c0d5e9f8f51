"""One owner per data store: an exclusive lock on the state folder.

The compute API recovers its jobs, re-runs its queue and sweeps partial uploads at start, each
right only if no other process uses the same state. A second API on the same data folder would
delete the first one's uploads and mark its running jobs interrupted, so it refuses to start.

``flock`` is released by the kernel when the process ends, however it ends (kill -9 included),
so a crashed API never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from slicer_cloud.errors import SlicerCloudError

LOCK_NAME = "owner.lock"


class StateLock:
    """Held from :meth:`acquire` until :meth:`release` (or the process ends)."""

    def __init__(self, state_dir: Path, *, data_dir: Path, owner: str):
        self.path = Path(state_dir) / LOCK_NAME
        self.data_dir = Path(data_dir)
        self.owner = owner
        self._fd: int | None = None

    def acquire(self) -> StateLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise SlicerCloudError(
                f"Another {holder or 'slicer-cloud process'} already serves the data folder {self.data_dir}. "
                "Two on one folder would delete each other's uploads and re-run each other's jobs: stop that "
                "one first, or give this one another --data folder.",
                status=409,
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"slicer-cloud {self.owner} (process {os.getpid()})\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
                os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    with contextlib.suppress(OSError):
        return os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    return ""
