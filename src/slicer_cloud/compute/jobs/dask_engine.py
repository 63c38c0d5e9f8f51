"""The Dask engine: jobs run on a ``distributed`` cluster.

With a scheduler address it joins that cluster (one started by hand, by Dask Gateway or by the
Dask operator on Kubernetes); given a cluster object it drives that one (the SLURM engine hands
it dask-jobqueue's clusters, see :mod:`slicer_cloud.compute.jobs.slurm`); with neither it starts
a LocalCluster of ``workers`` single-threaded worker processes. Workers must see the data folder
at the same path (a shared file system on a cluster). Every way the cluster is secured by
:func:`~slicer_cloud.compute.jobs.dask_security.dask_security` (mutual TLS; a cluster we start
gets credentials made for this run only, so no other account can connect a client to it).

A worker that dies while running a job (its machine, its SLURM job cancelled, preempted or past
its time) takes the job with it: the scheduler runs the job again elsewhere as often as its
``allowed-failures`` setting says, and each restart is reported in the job's log with the
reason; past that the job fails, saying which worker was lost.

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
    import os

    where = {"worker": str(worker.name), "slurm_job": os.environ.get("SLURM_JOB_ID")}
    cancel = Event(_cancel_event_name(spec.job_id))
    last_check = [0.0, False]

    def report(event: str, payload: dict[str, Any]) -> None:
        if event == "log":
            return  # the log tail comes back with the outcome; lines would flood the scheduler
        worker.log_event(TOPIC, {"job_id": spec.job_id, "event": event, **payload, **where})

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

    def __init__(self, scheduler: str | None = None, workers: int | None = None, *, memory_limit: str | int = "auto",
                 cluster: Any = None):
        from distributed import Client, LocalCluster

        self._cluster = cluster
        security = None if cluster is not None else dask_security(new_cluster=not scheduler, scheduler=scheduler)
        try:
            if cluster is not None:
                self._client = Client(cluster, timeout="60s")  # takes the cluster's credentials
            elif scheduler:
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
        self._clients: dict[str, Any] = {}  # job -> the client it was submitted through
        self._ran_on: dict[str, str] = {}  # job -> the worker that last started it
        self._notes: dict[str, list[str]] = {}  # job -> restarts after a lost worker
        self._lock = threading.Lock()
        self._client.subscribe_topic(TOPIC, self._on_event)

    def _client_for(self, spec: JobSpec) -> Any:
        """The cluster a job goes to (one here; the SLURM engine has one per resource profile)."""
        return self._client

    def _prepare(self, spec: JobSpec) -> JobSpec:
        """A last look at a job before it leaves (the SLURM engine sets its thread count)."""
        return spec

    @staticmethod
    def _worker_label(message: dict[str, Any]) -> str:
        """How a job's log names a worker: its Dask name, and its SLURM job where it is one."""
        label = f"worker {message.get('worker') or '?'}"
        return label + (f" (SLURM job {message['slurm_job']})" if message.get("slurm_job") else "")

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
                job_id = message["job_id"]
                with self._lock:
                    self._running.add(job_id)
                    before = self._ran_on.get(job_id)
                    self._ran_on[job_id] = self._worker_label(message)
                if before is None:
                    listener.started(job_id)
                else:
                    note = f"Started again on {self._ran_on[job_id]}: {before}, which was running it, ended."
                    with self._lock:
                        self._notes.setdefault(job_id, []).append(note)
                    listener.log(job_id, note)
            elif message["event"] == "progress":
                listener.progress(message["job_id"], message.get("progress"), message.get("comment"))
        except Exception:  # noqa: BLE001
            log.exception("job listener failed")

    def submit(self, spec: JobSpec, listener: JobListener) -> None:
        spec = self._prepare(spec)
        client = self._client_for(spec)
        with self._lock:
            self._listeners[spec.job_id] = listener
            self._clients[spec.job_id] = client
        future = client.submit(run_on_worker, spec, key=f"slicer-cloud-job-{spec.job_id}", pure=False, retries=0)
        with self._lock:
            self._futures[spec.job_id] = future
        future.add_done_callback(lambda done, job_id=spec.job_id: self._done(job_id, done))

    def _done(self, job_id: str, future: Any) -> None:
        with self._lock:
            listener = self._listeners.pop(job_id, None)
            self._futures.pop(job_id, None)
            self._running.discard(job_id)
            client = self._clients.pop(job_id, self._client)
            worker = self._ran_on.pop(job_id, None)
            notes = self._notes.pop(job_id, [])
        if listener is None:
            return
        if future.cancelled():
            outcome = JobOutcome("cancelled", error="Cancelled before it started.")
        else:
            from distributed import KilledWorker

            try:
                outcome = future.result()
            except KilledWorker as error:
                log.warning("job %s: %s", job_id, error)
                tried = "it was not run again" if error.allowed_failures == 0 else \
                    f"it was started {error.allowed_failures + 1} times, on workers that all ended"
                outcome = JobOutcome("failed", error=(
                    f"The job was lost with {worker or 'its worker'}, which ended while running it (cancelled, "
                    f"preempted, past its time limit or out of memory); {tried}. Submit it again."))  # fmt: skip
            except Exception as error:  # noqa: BLE001 - a pickling problem, a broken worker...
                log.warning("job %s: the Dask task failed: %r", job_id, error)
                outcome = JobOutcome("failed", error=f"The Dask task failed: {error}")
        if notes:
            outcome.notes = notes + outcome.notes
            outcome.log_tail = notes + outcome.log_tail
        try:
            from distributed import Event

            Event(_cancel_event_name(job_id), client=client).clear()
        except Exception:  # noqa: BLE001
            pass
        listener.finished(job_id, outcome)

    def cancel(self, job_id: str) -> None:
        from distributed import Event

        with self._lock:
            client = self._clients.get(job_id, self._client)
        Event(_cancel_event_name(job_id), client=client).set()
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
