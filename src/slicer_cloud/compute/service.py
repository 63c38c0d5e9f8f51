"""The parts of a running compute API, started and stopped together."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from slicer_cloud.compute.inspect import describe_file, warm_up
from slicer_cloud.compute.jobs import engines
from slicer_cloud.compute.jobs.engine import Engine
from slicer_cloud.compute.jobs.manager import JobManager
from slicer_cloud.compute.modules.registry import Registry
from slicer_cloud.compute.settings import ComputeSettings
from slicer_cloud.compute.workers import WorkerPool
from slicer_cloud.config import Limits
from slicer_cloud.store.items import STATE_DIR, ItemStore
from slicer_cloud.store.lock import StateLock
from slicer_cloud.store.paths import DataRoot

log = logging.getLogger(__name__)


def make_engine(settings: ComputeSettings, inspect_pool: WorkerPool | None, limits: Limits) -> Engine:
    limits_dict = limits.model_dump()

    def describe(path: str, kind: str, is_image: bool) -> dict:
        # outputs are files too: checked in a worker process, not in the API process
        if inspect_pool is None:
            return describe_file(path, kind, is_image, limits_dict)
        return inspect_pool.call(describe_file, path, kind, is_image, limits_dict, timeout_s=settings.inspect_timeout_s)

    # slurm: its own max_jobs setting unless --workers (or SLICER_CLOUD_WORKERS) was given
    workers = settings.workers if settings.engine != "slurm" or "workers" in settings.model_fields_set else None
    return engines.make_engine(settings.engine, scheduler=settings.scheduler, workers=workers, describe=describe)


@dataclass
class ComputeService:
    settings: ComputeSettings
    limits: Limits
    store: ItemStore
    registry: Registry
    engine: Engine
    manager: JobManager
    inspect_pool: WorkerPool
    render_pool: WorkerPool
    lock: StateLock | None = None

    @property
    def staging_dir(self) -> Path:
        return self.store.state_dir / "uploads"

    @property
    def cache_dir(self) -> Path:
        return self.store.state_dir / "cache"

    @classmethod
    def start(cls, settings: ComputeSettings, limits: Limits | None = None) -> ComputeService:
        limits = limits or Limits()
        data = DataRoot(Path(settings.data_dir))
        # before anything below sweeps, recovers or re-queues: only the one owner may
        lock = StateLock(data.root / STATE_DIR, data_dir=data.root, owner="compute API").acquire()
        try:
            return cls._start_locked(settings, limits, data, lock)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _start_locked(cls, settings: ComputeSettings, limits: Limits, data: DataRoot, lock: StateLock) -> ComputeService:
        store = ItemStore(data)
        for leftover in (store.state_dir / "uploads", store.state_dir / "cache"):
            shutil.rmtree(leftover, ignore_errors=True)  # partial uploads and conversions of a past run
        registry = Registry(settings.modules_path)
        memory = settings.worker_memory_bytes
        inspect_pool = WorkerPool("inspection", settings.inspect_workers, default_timeout_s=settings.inspect_timeout_s, memory_bytes=memory)
        render_pool = WorkerPool("render", settings.render_workers, default_timeout_s=settings.render_timeout_s, memory_bytes=memory)
        inspect_pool.submit(warm_up)  # start the worker now, not on the first upload
        engine = make_engine(settings, inspect_pool, limits)
        manager = JobManager(store, registry, engine, wall_time_s=settings.job_timeout_s, memory_bytes=settings.job_memory_bytes)
        recovered = manager.recover()
        if any(recovered.values()):
            log.warning("recovered after a restart: %s", recovered)
        return cls(settings, limits, store, registry, engine, manager, inspect_pool, render_pool, lock)

    def close(self) -> None:
        self.engine.close()
        self.inspect_pool.close()
        self.render_pool.close()
        self.store.close()
        if self.lock is not None:
            self.lock.release()
