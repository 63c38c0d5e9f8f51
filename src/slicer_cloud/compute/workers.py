"""A small pool of worker processes for everything that parses untrusted files.

Each worker is a process of its own, with a memory limit, that runs one call at a time. A crash
in a reader (a malformed file that upsets a C library, or the memory limit reached) ends that
worker only: the call that caused it gets a 4xx saying the file could not be read, calls running
in the other workers go on, calls waiting in the queue run in a fresh worker. A call's time limit
counts from when a worker starts it, not while it waits its turn; past it, its worker is ended.

(The standard library's ProcessPoolExecutor does neither: one dead worker breaks the whole pool
and fails every call in it, and a timeout on its futures counts the wait in the queue.)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from slicer_cloud.errors import SlicerCloudError

log = logging.getLogger(__name__)
T = TypeVar("T")
_SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter: none of the API's threads or sockets


def _guarded(fn: Callable[..., T], *args: Any) -> tuple[str, Any, int]:
    """Runs in the worker: a user error comes back whole (its status survives the trip)."""
    try:
        return ("ok", fn(*args), 0)
    except SlicerCloudError as error:
        return ("error", error.message, error.status)
    except MemoryError:
        return ("error", "The file could not be read: it needs more memory than a reader may use.", 422)
    except Exception as error:  # noqa: BLE001 - a reader choking on a malformed file
        import traceback

        traceback.print_exc()  # to the server's log; the user gets the type of failure only
        return ("error", f"The file could not be processed ({type(error).__name__}).", 422)


def _worker_main(conn: Connection, memory_bytes: int | None) -> None:
    """A worker's loop: receive ``(fn, args)``, send back the guarded result; stop on ``None``."""
    import resource

    if memory_bytes:
        # the address space, as for jobs: a reader that tries to allocate past it fails (or
        # aborts) in this process, never the machine
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        fn, args = task
        conn.send(_guarded(fn, *args))


def _unwrap(result: tuple[str, Any, int]) -> Any:
    kind, value, status = result
    if kind == "error":
        raise SlicerCloudError(value, status=status)
    return value


@dataclass
class _Call:
    fn: Callable[..., Any]
    args: tuple
    timeout_s: float
    future: concurrent.futures.Future


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, memory_bytes: int | None):
        self.conn, child_end = _SPAWN.Pipe()
        self.process = _SPAWN.Process(target=_worker_main, args=(child_end, memory_bytes), daemon=True)
        self.process.start()
        child_end.close()

    def alive(self) -> bool:
        return self.process.is_alive()

    def stop(self, *, kill: bool = False) -> None:
        if kill:
            with contextlib.suppress(Exception):
                self.process.kill()
        else:
            with contextlib.suppress(Exception):
                self.conn.send(None)
        self.process.join(timeout=5)
        if self.process.is_alive():
            with contextlib.suppress(Exception):
                self.process.kill()
            self.process.join(timeout=5)
        with contextlib.suppress(Exception):
            self.conn.close()


class WorkerPool:
    """``max_workers`` processes, each fed by a thread of its own from one queue of calls."""

    def __init__(
        self,
        name: str,
        max_workers: int = 1,
        *,
        default_timeout_s: float = 120.0,
        memory_bytes: int | None = None,
    ):
        self.name = name
        self.max_workers = max_workers
        self.default_timeout_s = default_timeout_s
        self.memory_bytes = memory_bytes
        self._queue: queue.Queue[_Call | None] = queue.Queue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._workers: set[_Worker] = set()
        self._closed = False

    # -- the feeding threads ---------------------------------------------------------------------
    def _ensure_started(self) -> None:
        with self._lock:
            if self._closed:
                raise SlicerCloudError(f"The {self.name} workers have stopped.", status=503)
            while len(self._threads) < self.max_workers:
                thread = threading.Thread(target=self._feed, name=f"{self.name}-worker-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()

    def _feed(self) -> None:
        worker: _Worker | None = None
        try:
            while True:
                call = self._queue.get()
                if call is None:
                    return
                if not call.future.set_running_or_notify_cancel():
                    continue  # the caller gave up while it waited
                if worker is None or not worker.alive():
                    worker = self._start_worker(worker)
                worker = self._execute(worker, call)
        finally:
            if worker is not None:
                self._retire(worker, kill=False)

    def _start_worker(self, old: _Worker | None) -> _Worker:
        if old is not None:
            self._retire(old, kill=True)
        worker = _Worker(self.memory_bytes)
        with self._lock:
            self._workers.add(worker)
        return worker

    def _retire(self, worker: _Worker, *, kill: bool) -> None:
        worker.stop(kill=kill)
        with self._lock:
            self._workers.discard(worker)

    def _execute(self, worker: _Worker, call: _Call) -> _Worker | None:
        """Run one call in ``worker``; the worker to use next (None: start a fresh one)."""
        try:
            worker.conn.send((call.fn, call.args))
        except (OSError, EOFError, BrokenPipeError):
            call.future.set_exception(self._crashed(worker))
            self._retire(worker, kill=True)
            return None
        except Exception as error:  # noqa: BLE001 - arguments that cannot be pickled: our bug
            call.future.set_exception(SlicerCloudError("The file could not be processed.", status=500, detail=repr(error)))
            return worker
        deadline = time.monotonic() + call.timeout_s  # from now: the time spent queued does not count
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.warning("%s worker %s ran past %.0f s: ending it", self.name, worker.process.pid, call.timeout_s)
                self._retire(worker, kill=True)
                call.future.set_exception(
                    SlicerCloudError(f"The {self.name} worker took too long and was stopped.", status=504)
                )
                return None
            try:
                ready = worker.conn.poll(min(remaining, 1.0))
            except (OSError, EOFError):
                ready = True
            if not ready:
                if not worker.alive():
                    ready = True  # died without closing the pipe cleanly: recv below says so
                else:
                    continue
            try:
                result = worker.conn.recv()
            except (EOFError, OSError):
                call.future.set_exception(self._crashed(worker))
                self._retire(worker, kill=True)
                return None
            try:
                call.future.set_result(_unwrap(result))
            except SlicerCloudError as error:
                call.future.set_exception(error)
            return worker

    def _crashed(self, worker: _Worker) -> SlicerCloudError:
        worker.process.join(timeout=5)
        code = worker.process.exitcode
        log.warning("%s worker %s crashed (exit code %s)", self.name, worker.process.pid, code)
        return SlicerCloudError(
            "The file could not be read: the reader crashed on it (a malformed file, or one that needs "
            "more memory than a reader may use).",
            status=422,
            detail=f"{self.name} worker exit code {code}",
        )

    # -- the public calls ------------------------------------------------------------------------
    def submit(self, fn: Callable[..., T], *args: Any, timeout_s: float | None = None) -> concurrent.futures.Future:
        """Queue ``fn(*args)``; the future holds its result or a :class:`SlicerCloudError`."""
        self._ensure_started()
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put(_Call(fn, args, timeout_s or self.default_timeout_s, future))
        return future

    def call(self, fn: Callable[..., T], *args: Any, timeout_s: float | None = None) -> T:
        """Run ``fn(*args)`` in a worker and wait (for threads, such as a job engine's)."""
        return self.submit(fn, *args, timeout_s=timeout_s).result()

    async def run(self, fn: Callable[..., T], *args: Any, timeout_s: float | None = None) -> T:
        """Run ``fn(*args)`` in a worker without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(fn, *args, timeout_s=timeout_s))

    def close(self) -> None:
        """Fail the calls still queued, let running ones finish (briefly), end the workers."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        while True:
            try:
                call = self._queue.get_nowait()
            except queue.Empty:
                break
            if call is not None and call.future.set_running_or_notify_cancel():
                call.future.set_exception(SlicerCloudError(f"The {self.name} workers have stopped.", status=503))
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(timeout=30)
        with self._lock:
            leftovers = list(self._workers)
        for worker in leftovers:
            worker.stop(kill=True)
