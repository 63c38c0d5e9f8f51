"""The Dask engine: jobs run on a ``distributed`` cluster.

With a scheduler address it joins that cluster (reached the same way on a laptop, on SLURM
through dask-jobqueue or on Kubernetes through the Dask operator); without one it starts a
LocalCluster of ``workers`` single-threaded worker processes. Workers must see the data folder
at the same path (a shared file system on a cluster). Both ways the cluster is secured by
:func:`~slicer_cloud.compute.jobs.dask_security.dask_security` (mutual TLS; a LocalCluster gets
credentials made for this run only, so no other account can connect a client to it).

Progress travels back as worker events (``log_event``/``subscribe_topic``); cancelling sets a
Dask ``Event`` that the task polls while its module runs.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from slicer_cloud.compute.jobs.dask_security import dask_security
from slicer_cloud.compute.jobs.engine import Engine, JobListener
from slicer_cloud.compute.jobs.execute import execute
from slicer_cloud.compute.jobs.spec import JobOutcome, JobSpec
from slicer_cloud.errors import SlicerCloudError

log = logging.getLogger(__name__)
TOPIC = "slicer-cloud-job"
_CANCEL_POLL_S = 0.5


def _cancel_event_name(job_id: str) -> str:
    return f"slicer-cloud-cancel-{job_id}"


def run_on_worker(spec: JobSpec) -> JobOutcome:
    """The Dask task: runs the module where the worker is, reports through worker events."""
    from distributed import Event, get_worker

    worker = get_worker()
    cancel = Event(_cancel_event_name(spec.job_id))
    last_check = [0.0, False]

    def report(event: str, payload: dict[str, Any]) -> None:
        if event == "log":
            return  # the log tail comes back with the outcome; lines would flood the scheduler
        worker.log_event(TOPIC, {"job_id": spec.job_id, "event": event, **payload})

    def should_cancel() -> bool:
        now = time.monotonic()
        if now - last_check[0] >= _CANCEL_POLL_S:
            last_check[0] = now
            try:
                last_check[1] = cancel.is_set()
            except Exception:  # noqa: BLE001 - scheduler briefly unreachable: keep running
                pass
        return bool(last_check[1])

    from slicer_cloud.compute.inspect import describe_file

    return execute(spec, report, should_cancel, lambda path, kind, is_image: describe_file(path, kind, is_image))


class DaskEngine(Engine):
    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None, *, memory_limit: str | int = "auto"):
        from distributed import Client, LocalCluster

        self._cluster = None
        security = dask_security(new_cluster=not scheduler, scheduler=scheduler)
        try:
            if scheduler:
                self._client = Client(scheduler, timeout="20s", security=security)
            else:
                self._cluster = LocalCluster(
                    n_workers=max(1, workers or 1),
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    memory_limit=memory_limit,
                    security=security,  # implies tls:// for the scheduler and the workers
                )
                self._client = Client(self._cluster)  # takes the cluster's credentials
        except OSError as error:
            raise SlicerCloudError(f"Cannot reach the Dask scheduler {scheduler}: {error}", status=500) from error
        self.scheduler = self._client.scheduler.address
        self.workers = len(self._client.scheduler_info().get("workers", {})) or (workers or 1)
        self._listeners: dict[str, JobListener] = {}
        self._futures: dict[str, Any] = {}
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._client.subscribe_topic(TOPIC, self._on_event)

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "workers": self.workers, "scheduler": self.scheduler}

    def _on_event(self, event: tuple[float, dict[str, Any]]) -> None:
        _, message = event
        with self._lock:
            listener = self._listeners.get(message.get("job_id", ""))
        if listener is None:
            return
        try:
            if message["event"] == "started":
                with self._lock:
                    self._running.add(message["job_id"])
                listener.started(message["job_id"])
            elif message["event"] == "progress":
                listener.progress(message["job_id"], message.get("progress"), message.get("comment"))
        except Exception:  # noqa: BLE001
            log.exception("job listener failed")

    def submit(self, spec: JobSpec, listener: JobListener) -> None:
        with self._lock:
            self._listeners[spec.job_id] = listener
        future = self._client.submit(run_on_worker, spec, key=f"slicer-cloud-job-{spec.job_id}", pure=False, retries=0)
        with self._lock:
            self._futures[spec.job_id] = future
        future.add_done_callback(lambda done, job_id=spec.job_id: self._done(job_id, done))

    def _done(self, job_id: str, future: Any) -> None:
        with self._lock:
            listener = self._listeners.pop(job_id, None)
            self._futures.pop(job_id, None)
            self._running.discard(job_id)
        if listener is None:
            return
        if future.cancelled():
            outcome = JobOutcome("cancelled", error="Cancelled before it started.")
        else:
            try:
                outcome = future.result()
            except Exception as error:  # noqa: BLE001 - a lost worker, a pickling problem...
                outcome = JobOutcome("failed", error=f"The Dask task failed: {error}")
        try:
            from distributed import Event

            Event(_cancel_event_name(job_id), client=self._client).clear()
        except Exception:  # noqa: BLE001
            pass
        listener.finished(job_id, outcome)

    def cancel(self, job_id: str) -> None:
        from distributed import Event

        Event(_cancel_event_name(job_id), client=self._client).set()
        with self._lock:
            future = self._futures.get(job_id)
            running = job_id in self._running
        if future is not None and not running and future.status == "pending":
            # not started yet: Dask drops it; a running one stops through the event
            future.cancel()

    def close(self) -> None:
        with self._lock:
            job_ids = list(self._futures)
        for job_id in job_ids:
            self.cancel(job_id)
        try:
            self._client.close(timeout=10)
        finally:
            if self._cluster is not None:
                self._cluster.close(timeout=10)
