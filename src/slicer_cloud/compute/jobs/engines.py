"""The one engine factory: ``slicer-cloud api`` and ``slicer-cloud run`` both get their engine
here, so an engine name means the same thing everywhere.

* ``local``: a pool of processes on this machine;
* ``dask``: a Dask cluster (a LocalCluster, or the scheduler at ``scheduler``);
* ``slurm``: Dask workers that are SLURM jobs (dask-jobqueue), settings ``SLICER_CLOUD_SLURM_*``.
"""

from __future__ import annotations

from slicer_cloud.compute.jobs.engine import Engine, LocalEngine
from slicer_cloud.compute.jobs.execute import Describe
from slicer_cloud.errors import SlicerCloudError

ENGINES = ("local", "dask", "slurm")


def make_engine(kind: str, *, scheduler: str | None = None, workers: int | None = None,
                describe: Describe | None = None) -> Engine:
    if kind == "local":
        return LocalEngine(workers, describe)
    if kind == "dask":
        from slicer_cloud.compute.jobs.dask_engine import DaskEngine

        return DaskEngine(scheduler, workers)
    if kind == "slurm":
        if scheduler:
            raise SlicerCloudError("--scheduler is for the dask engine; the slurm engine starts its own scheduler.", status=422)
        from pydantic import ValidationError

        from slicer_cloud.compute.jobs.slurm import SlurmEngine, SlurmSettings

        try:
            settings = SlurmSettings()
        except ValidationError as error:
            problems = "; ".join(f"SLICER_CLOUD_SLURM_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors())
            raise SlicerCloudError(f"Bad SLURM settings: {problems}", status=500) from None
        if workers:
            settings.max_jobs = workers  # --workers: the most worker jobs at once
        return SlurmEngine(settings)
    raise SlicerCloudError(f"Unknown engine {kind!r}: use {', '.join(ENGINES)}.", status=422)
