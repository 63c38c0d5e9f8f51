"""Job engines: where jobs run. The contract every engine keeps:

* ``submit(spec, listener)`` returns at once; the engine later calls ``listener.started``,
  any number of ``listener.progress``/``listener.log``, then exactly one ``listener.finished``
  with a :class:`JobOutcome` (succeeded, failed or cancelled), from any thread.
* ``cancel(job_id)`` asks a queued or running job to stop; the whole process tree of a running
  job ends, and ``finished`` still comes, with state ``cancelled``.
* ``close()`` stops taking jobs and ends running ones.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Any, Protocol

from slicer_cloud.compute.jobs.execute import Describe, execute
from slicer_cloud.compute.jobs.spec import JobOutcome, JobSpec

log = logging.getLogger(__name__)


class JobListener(Protocol):
    def started(self, job_id: str) -> None: ...
    def progress(self, job_id: str, progress: float | None, comment: str | None) -> None: ...
    def log(self, job_id: str, line: str) -> None: ...
    def finished(self, job_id: str, outcome: JobOutcome) -> None: ...


class Engine:
    name = "engine"
    workers = 1

    def submit(self, spec: JobSpec, listener: JobListener) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def cancel(self, job_id: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "workers": self.workers}


def dispatch(listener: JobListener, job_id: str, event: str, payload: dict[str, Any]) -> None:
    """Forward one event from :func:`execute` to a listener."""
    try:
        if event == "started":
            listener.started(job_id)
        elif event == "progress":
            listener.progress(job_id, payload.get("progress"), payload.get("comment"))
        elif event == "log":
            listener.log(job_id, payload.get("line", ""))
    except Exception:  # noqa: BLE001 - a listener's bug must not kill the job
        log.exception("job listener failed on %s", event)


class LocalEngine(Engine):
    """N worker threads on this machine; each job runs as its own process (with limits)."""

    name = "local"

    def __init__(self, workers: int | None = None, describe: Describe | None = None):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._describe = describe
        self._queue: queue.Queue[tuple[JobSpec, JobListener] | None] = queue.Queue()
        self._cancelled: dict[str, threading.Event] = {}
        self._waiting: dict[str, JobListener] = {}  # submitted, not started yet
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._threads = [threading.Thread(target=self._work, name=f"job-worker-{n}", daemon=True) for n in range(self.workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, spec: JobSpec, listener: JobListener) -> None:
        with self._lock:
            self._cancelled[spec.job_id] = threading.Event()
            self._waiting[spec.job_id] = listener
        self._queue.put((spec, listener))

    def cancel(self, job_id: str) -> None:
        with self._lock:
            waiting = self._waiting.pop(job_id, None)
            flag = self._cancelled.get(job_id)
        if flag is not None:
            flag.set()
        if waiting is not None:
            # not started: it ends now, not when a worker gets to it behind a long queue
            waiting.finished(job_id, JobOutcome("cancelled", error="Cancelled before it started."))

    def _work(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            spec, listener = entry
            with self._lock:
                flag = self._cancelled.setdefault(spec.job_id, threading.Event())
                if self._waiting.pop(spec.job_id, None) is None:
                    self._cancelled.pop(spec.job_id, None)
                    continue  # cancelled while waiting: already reported
            try:
                if flag.is_set() or self._closing.is_set():
                    outcome = JobOutcome("cancelled", error="Cancelled before it started.")
                else:
                    outcome = execute(
                        spec,
                        lambda event, payload, job_id=spec.job_id: dispatch(listener, job_id, event, payload),
                        lambda: flag.is_set() or self._closing.is_set(),
                        self._describe,
                    )
            except Exception as error:  # noqa: BLE001 - report, never lose a job
                log.exception("job %s crashed the engine", spec.job_id)
                outcome = JobOutcome("failed", error=f"Internal error while running the job: {error}")
            finally:
                with self._lock:
                    self._cancelled.pop(spec.job_id, None)
            try:
                listener.finished(spec.job_id, outcome)
            except Exception:  # noqa: BLE001
                log.exception("job listener failed on finished")

    def close(self) -> None:
        self._closing.set()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=10)
