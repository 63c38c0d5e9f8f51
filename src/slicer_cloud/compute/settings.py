"""Settings of the compute API (``slicer-cloud api``); each can come from the environment
(prefix ``SLICER_CLOUD_``), the command line overrides them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field

from slicer_cloud.config import ServiceSettings


def _default_job_memory() -> int:
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        total = 8 * 1024**3
    return int(min(16 * 1024**3, total * 3 // 4))


class ComputeSettings(ServiceSettings):
    port: int = Field(default=8000, ge=0, le=65535)
    engine: Literal["local", "dask", "slurm"] = "local"
    scheduler: str | None = Field(default=None, description="Dask scheduler address; none: a LocalCluster is started.")
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, gt=0, le=256, description="Jobs run at once (local), LocalCluster workers (dask) or most worker jobs (slurm).")
    modules_path: list[Path] = Field(default_factory=list, description="Folders of CLI module executables that answer --xml.")
    job_timeout_s: float = Field(default=6 * 3600.0, gt=0, description="Wall-time limit of one job.")
    job_memory_bytes: int = Field(default_factory=_default_job_memory, gt=0, description="Address-space limit of one job's process.")
    inspect_workers: int = Field(default=2, gt=0, le=16, description="Processes that check uploads and convert files.")
    render_workers: int = Field(default=1, gt=0, le=8, description="Processes that render PNGs (each loads VTK).")
    worker_memory_bytes: int = Field(
        default_factory=_default_job_memory, gt=0, description="Address-space limit of each inspection and render worker."
    )
    render_timeout_s: float = Field(default=120.0, gt=0)
    inspect_timeout_s: float = Field(default=600.0, gt=0)
    max_page: int = Field(default=500, gt=0, description="Most entries one page of a listing returns.")
