"""Functions the worker-pool tests run in worker processes (importable by a spawned worker)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def wait_for_file(path: str, limit_s: float = 120.0) -> str:
    """Say it started (``path.started``), block until ``path`` exists (the test releases it)."""
    Path(path + ".started").touch()
    deadline = time.monotonic() + limit_s
    while not Path(path).exists():
        if time.monotonic() > deadline:
            return "never released"
        time.sleep(0.02)
    return "released"


def crash() -> None:
    os.abort()  # what a C++ reader does on std::bad_alloc


def allocate(nbytes: int) -> int:
    return len(bytearray(nbytes))


def pid() -> int:
    return os.getpid()
