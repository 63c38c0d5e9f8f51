"""What an engine needs to run one job, and what comes back. Both are plain picklable data, so
they travel to a Dask worker on another machine as well as to a local thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: in ``argv[0]``: the worker's own Python, resolved where the job runs (the API's path may not
#: exist on a cluster node).
PYTHON = "@python"

STATES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
FINAL_STATES = ("succeeded", "failed", "cancelled", "interrupted")


@dataclass
class OutputSpec:
    """One file a module writes: where, and what kind of item it becomes."""

    parameter: str
    path: str
    kind: str  # volume | segmentation | model | table | file
    is_image: bool = False


@dataclass
class JobSpec:
    job_id: str
    module: str
    argv: list[str]
    workdir: str
    outputs: list[OutputSpec] = field(default_factory=list)
    return_file: str | None = None
    wall_time_s: float = 3600.0
    memory_bytes: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    #: inspect outputs (headers, sha256) where the job runs; off for ``slicer-cloud run``.
    describe_outputs: bool = True


@dataclass
class JobOutcome:
    state: str  # succeeded | failed | cancelled
    exit_code: int | None = None
    error: str | None = None
    log_tail: list[str] = field(default_factory=list)
    return_text: str | None = None
    #: parameter name -> metadata of the output file (see compute.inspect.describe_file)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    #: what the engine did besides running it, e.g. started again after its worker was lost
    notes: list[str] = field(default_factory=list)
