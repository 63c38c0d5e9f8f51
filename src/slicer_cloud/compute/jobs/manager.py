"""The job manager: turns a request into a job, runs it on an engine, keeps its state in SQLite,
registers its outputs as items and tells event-stream listeners what happens.

Outputs become items only when the job succeeded, in the same transaction that marks it
succeeded; a job's files live in its working folder until then, and that folder is removed when
the job ends (or at the next start, after a crash).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from slicer_cloud.compute.jobs.engine import Engine
from slicer_cloud.compute.jobs.execute import LOG_TAIL_LINES
from slicer_cloud.compute.jobs.spec import FINAL_STATES, JobOutcome, JobSpec, OutputSpec
from slicer_cloud.compute.jobs.store import Job, JobStore
from slicer_cloud.compute.modules.descriptor import Parameter
from slicer_cloud.compute.modules.protocol import parse_return_text
from slicer_cloud.compute.modules.registry import Registry
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store.index import Item, new_id, now_iso
from slicer_cloud.store.items import ItemStore, safe_name

log = logging.getLogger(__name__)

#: which item kinds a file parameter accepts as input
ACCEPTS = {"image": ("volume", "segmentation"), "geometry": ("model",), "table": ("table",), "measurement": ("table",)}
_DB_PROGRESS_INTERVAL_S = 0.5


def output_kind(parameter: Parameter) -> str:
    if parameter.type == "image":
        return "segmentation" if (parameter.subtype or "").lower() == "label" else "volume"
    return {"geometry": "model", "table": "table", "measurement": "table"}.get(parameter.type, "file")


def stem(name: str) -> str:
    lower = name.lower()
    for suffix in (".nii.gz", ".seg.nrrd"):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


class JobManager:
    def __init__(self, store: ItemStore, registry: Registry, engine: Engine, *, wall_time_s: float = 3600.0,
                 memory_bytes: int | None = None):
        self.store = store
        self.registry = registry
        self.engine = engine
        self.jobs = JobStore(store.db)
        self.wall_time_s = wall_time_s
        self.memory_bytes = memory_bytes
        self._lock = threading.Lock()
        self._cancel_requested: set[str] = set()
        self._live: dict[str, dict[str, Any]] = {}
        self._subscribers: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]]] = collections.defaultdict(set)

    # -- start-up ------------------------------------------------------------------------------
    def recover(self) -> dict[str, int]:
        """After a (re)start: running jobs become interrupted, stale files go, queued jobs rerun."""
        interrupted = self.jobs.interrupt_running()
        for folder in self.store.jobs_dir.iterdir():
            shutil.rmtree(folder, ignore_errors=True)
        orphans = self.store.collect_garbage()
        queued = self.jobs.ids_in_state("queued")
        for job_id in queued:
            spec = self._spec_from_json(self.jobs.spec(job_id))
            self.engine.submit(spec, self)
        return {"interrupted": len(interrupted), "requeued": len(queued), "orphans_removed": orphans}

    @staticmethod
    def _spec_from_json(data: dict[str, Any]) -> JobSpec:
        data = dict(data)
        data["outputs"] = [OutputSpec(**o) for o in data.get("outputs", [])]
        return JobSpec(**data)

    # -- submitting ----------------------------------------------------------------------------
    def submit(self, module: str, raw: dict[str, Any], idempotency_key: str | None = None) -> tuple[Job, bool]:
        entry = self.registry.get(module)
        descriptor = entry.descriptor
        request_hash = hashlib.sha256(json.dumps({"module": module, "parameters": raw}, sort_keys=True, default=str).encode()).hexdigest()
        if idempotency_key:
            if len(idempotency_key) > 200:
                raise SlicerCloudError("The Idempotency-Key header is longer than 200 characters.", status=422)
            existing = self.store.db.query("SELECT id, request_hash FROM jobs WHERE idempotency_key = ?", (idempotency_key,))
            if existing:
                if existing[0]["request_hash"] != request_hash:
                    raise SlicerCloudError("This Idempotency-Key was already used for a different request.", status=409)
                return self.jobs.get(existing[0]["id"]), False
        values = descriptor.validate(raw)
        job_id = new_id()
        workdir = self.store.job_dir(job_id)
        files: dict[str, Any] = {}
        first_input: str | None = None
        for parameter in descriptor.parameters:
            if not parameter.is_file or parameter.channel != "input" or parameter.name not in values:
                continue
            given = values[parameter.name]
            paths = [self._input_path(parameter, value) for value in (given if isinstance(given, list) else [given])]
            if first_input is None and parameter.type != "directory":
                first_input = self.store.get(given[0] if isinstance(given, list) else given).name
            files[parameter.name] = paths if isinstance(given, list) else paths[0]
        outputs: list[OutputSpec] = []
        for parameter in descriptor.file_outputs:
            name = values.get(parameter.name)
            if name is None:
                name = f"{module}-{stem(first_input) if first_input else 'output'}{parameter.default_extension()}"
            elif safe_name(name) != name:
                raise SlicerCloudError(f"Parameter {parameter.name!r}: a plain file name is required (got {name!r}).", status=422)
            if parameter.file_extensions and not name.lower().endswith(tuple(e.lower() for e in parameter.file_extensions)):
                raise SlicerCloudError(
                    f"Parameter {parameter.name!r}: the name must end with {', '.join(parameter.file_extensions)} (got {name!r}).",
                    status=422,
                )
            values[parameter.name] = name
            path = workdir / "out" / parameter.name / name
            files[parameter.name] = str(path)
            outputs.append(OutputSpec(parameter.name, str(path), output_kind(parameter), parameter.type == "image"))
        return_file = str(workdir / "return-parameters.txt") if descriptor.return_parameters else None
        argv = entry.command + descriptor.command_line(values, files, Path(return_file) if return_file else None)
        spec = JobSpec(
            job_id=job_id, module=module, argv=argv, workdir=str(workdir), outputs=outputs, return_file=return_file,
            wall_time_s=self.wall_time_s, memory_bytes=self.memory_bytes,
        )
        for output in outputs:
            Path(output.path).parent.mkdir(parents=True, exist_ok=True)
        shown = {k: v for k, v in values.items()}
        job, created = self.jobs.create(Job(job_id, module, shown), asdict(spec), idempotency_key, request_hash)
        if not created:
            shutil.rmtree(workdir, ignore_errors=True)
            return job, False
        self.engine.submit(spec, self)
        return job, True

    def _input_path(self, parameter: Parameter, value: str) -> str:
        if parameter.type == "directory":
            path = self.store.data.resolve(value)
            if not path.is_dir():
                raise SlicerCloudError(f"Parameter {parameter.name!r}: {value!r} is not a folder of the data folder.", status=422)
            return str(path)
        if not self.store.index.exists(value):
            raise SlicerCloudError(f"Parameter {parameter.name!r}: no item with id {value!r}.", status=422)
        item = self.store.get(value)
        accepted = ACCEPTS.get(parameter.type)
        if accepted and item.kind not in accepted:
            raise SlicerCloudError(
                f"Parameter {parameter.name!r} takes a {' or '.join(accepted)} item; {value!r} is a {item.kind}.", status=422
            )
        return str(self.store.absolute(item))

    # -- reading -------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        with self._lock:
            live = self._live.get(job_id)
            if live and job.state not in FINAL_STATES:
                job.progress = live["progress"]
                job.comment = live["comment"]
                job.log_tail = list(live["log"])
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job.state in FINAL_STATES:
            raise SlicerCloudError(f"Job {job_id} has already ended ({job.state}).", status=409)
        with self._lock:
            self._cancel_requested.add(job_id)
        self.engine.cancel(job_id)
        return job

    def wait(self, job_id: str, timeout_s: float) -> Job:
        deadline = time.monotonic() + timeout_s
        job = self.get(job_id)
        while job.state not in FINAL_STATES and time.monotonic() < deadline:
            time.sleep(0.05)
            job = self.get(job_id)
        return job

    # -- events from the engine (any thread) ---------------------------------------------------
    def started(self, job_id: str) -> None:
        with self._lock:
            self._live[job_id] = {"progress": 0.0, "comment": None, "log": collections.deque(maxlen=LOG_TAIL_LINES), "written": 0.0}
        self.jobs.mark_running(job_id)
        self._publish(job_id, "state", {"state": "running"})

    def progress(self, job_id: str, progress: float | None, comment: str | None) -> None:
        write = False
        with self._lock:
            live = self._live.get(job_id)
            if live is None:
                return
            if progress is not None:
                live["progress"] = progress
            if comment:
                live["comment"] = comment
            now = time.monotonic()
            if now - live["written"] >= _DB_PROGRESS_INTERVAL_S:
                live["written"] = now
                write = True
            snapshot = {"progress": live["progress"], "comment": live["comment"]}
        if write:
            self.jobs.update(job_id, **snapshot)
        self._publish(job_id, "progress", snapshot)

    def log(self, job_id: str, line: str) -> None:
        with self._lock:
            live = self._live.get(job_id)
            if live is not None:
                live["log"].append(line)
        self._publish(job_id, "log", {"line": line})

    def finished(self, job_id: str, outcome: JobOutcome) -> None:
        try:
            self._finish(job_id, outcome)
        except Exception as error:  # noqa: BLE001 - the job must end in a final state regardless
            log.exception("registering the results of job %s failed", job_id)
            self.jobs.update(job_id, state="failed", finished=now_iso(), error=f"Registering the results failed: {error}")
        finally:
            with self._lock:
                self._live.pop(job_id, None)
            shutil.rmtree(self.store.job_dir(job_id), ignore_errors=True)
            job = self.jobs.get(job_id)
            self._publish(job_id, "end", job.to_json())

    def _finish(self, job_id: str, outcome: JobOutcome) -> None:
        current = self.jobs.get(job_id)
        if current.state in FINAL_STATES:
            return  # already interrupted (restart) or recorded
        common = {"finished": now_iso(), "exit_code": outcome.exit_code, "log_tail": outcome.log_tail}
        with self._lock:
            live = self._live.get(job_id)
            if live is not None:
                common["comment"] = live["comment"]
                if outcome.state != "succeeded":
                    common["progress"] = live["progress"]
            asked = job_id in self._cancel_requested
            self._cancel_requested.discard(job_id)
        if outcome.state == "cancelled" and not asked:
            # the engine stopped it because the server is shutting down
            outcome.state, outcome.error = "interrupted", "The server stopped while this job was running; submit it again."
        if outcome.state != "succeeded":
            self.jobs.update(job_id, state=outcome.state, error=outcome.error, **common)
            return
        spec = self._spec_from_json(self.jobs.spec(job_id))
        descriptor = self.registry.get(spec.module).descriptor
        returned: dict[str, Any] = {}
        if outcome.return_text is not None:
            returned = parse_return_text(outcome.return_text, descriptor)
        items: list[Item] = []
        moved: list[Path] = []
        try:
            for output in spec.outputs:
                meta = dict(outcome.outputs.get(output.parameter) or {})
                source = Path(output.path)
                item_id, target = self.store.new_item_path(source.name)
                os.replace(source, target)
                moved.append(target)
                kind = meta.pop("kind", output.kind)
                if output.kind == "segmentation" and kind == "volume":
                    kind = "segmentation"  # the descriptor says label map
                items.append(Item(
                    id=item_id, kind=kind, name=source.name, path=self.store.relative(target), owned=True,
                    size=meta.pop("size", target.stat().st_size), sha256=meta.pop("sha256", ""),
                    source={"type": "job", "job": job_id, "module": spec.module, "parameter": output.parameter},
                    **{k: meta.get(k) for k in Item._META},
                ))
            with self.store.db.transaction() as conn:
                for item in items:
                    self.store.index.insert(item, conn)
                self.jobs.update(
                    job_id, conn, state="succeeded", progress=1.0, outputs=[i.id for i in items],
                    return_parameters=returned, **common,
                )
        except BaseException:
            for target in moved:
                self.store.discard_folder(target.parent.name)
            raise

    # -- server-sent events --------------------------------------------------------------------
    def subscribe(self, job_id: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=1000)
        with self._lock:
            self._subscribers[job_id].add((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, job_id: str, queue: asyncio.Queue) -> None:
        with self._lock:
            entries = self._subscribers.get(job_id, set())
            for entry in [e for e in entries if e[1] is queue]:
                entries.discard(entry)
            if not entries:
                self._subscribers.pop(job_id, None)

    def _publish(self, job_id: str, event: str, data: dict[str, Any]) -> None:
        with self._lock:
            targets = list(self._subscribers.get(job_id, ()))
        for loop, queue in targets:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(_offer, queue, (event, data))


def _offer(queue: asyncio.Queue, item: tuple[str, dict[str, Any]]) -> None:
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(item)
