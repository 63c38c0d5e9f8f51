"""A small pool of worker processes for everything that parses untrusted files.

A crash in a reader (a malformed file that upsets a C library) kills a worker, never the API:
the pool is rebuilt and the request gets a 4xx saying the file could not be read. A call that
runs past its time limit ends the pool's processes the same way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from slicer_cloud.errors import SlicerCloudError

log = logging.getLogger(__name__)
T = TypeVar("T")


def _guarded(fn: Callable[..., T], *args: Any) -> tuple[str, Any, int]:
    """Runs in the worker: a user error comes back whole (its status survives the trip)."""
    try:
        return ("ok", fn(*args), 0)
    except SlicerCloudError as error:
        return ("error", error.message, error.status)
    except Exception as error:  # noqa: BLE001 - a reader choking on a malformed file
        import traceback

        traceback.print_exc()  # to the server's log
        return ("error", f"The file could not be processed ({type(error).__name__}: {error}).", 422)


def _unwrap(result: tuple[str, Any, int]) -> Any:
    kind, value, status = result
    if kind == "error":
        raise SlicerCloudError(value, status=status)
    return value


class WorkerPool:
    def __init__(self, name: str, max_workers: int = 1, *, default_timeout_s: float = 120.0):
        self.name = name
        self.max_workers = max_workers
        self.default_timeout_s = default_timeout_s
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn: a fresh interpreter, none of the API's threads or sockets inherited
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=self.max_workers, mp_context=multiprocessing.get_context("spawn")
                )
            return self._pool

    def _discard(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for process in processes:
            with contextlib.suppress(Exception):
                process.kill()
        with contextlib.suppress(Exception):
            pool.shutdown(wait=False, cancel_futures=True)

    def submit(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future:
        return self._executor().submit(fn, *args)

    def call(self, fn: Callable[..., T], *args: Any, timeout_s: float | None = None) -> T:
        """Run ``fn(*args)`` in a worker and wait (for threads, such as a job engine's)."""
        pool = self._executor()
        future = pool.submit(_guarded, fn, *args)
        try:
            return _unwrap(future.result(timeout=timeout_s or self.default_timeout_s))
        except BrokenProcessPool:
            self._discard(pool)
            raise SlicerCloudError("The file could not be read: the reader crashed on it.", status=422) from None
        except concurrent.futures.TimeoutError:
            self._discard(pool)
            raise SlicerCloudError(f"The {self.name} worker took too long and was stopped.", status=504) from None

    async def run(self, fn: Callable[..., T], *args: Any, timeout_s: float | None = None) -> T:
        """Run ``fn(*args)`` in a worker without blocking the event loop."""
        pool = self._executor()
        try:
            future = asyncio.wrap_future(pool.submit(_guarded, fn, *args))
            return _unwrap(await asyncio.wait_for(future, timeout=timeout_s or self.default_timeout_s))
        except BrokenProcessPool:
            self._discard(pool)
            raise SlicerCloudError("The file could not be read: the reader crashed on it.", status=422) from None
        except asyncio.TimeoutError:
            self._discard(pool)
            raise SlicerCloudError(f"The {self.name} worker took too long and was stopped.", status=504) from None

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
