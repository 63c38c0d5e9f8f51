"""The SLURM engine: the Dask engine on dask-jobqueue's ``SLURMCluster``.

Each Dask worker is one SLURM job (``sbatch``), started and ended by adaptive scaling between
``min_jobs`` and ``max_jobs``; a worker runs one module at a time. Modules that need other
resources (more cores, memory, time, a partition, a GPU) get a *profile*: each profile is a
SLURMCluster of its own whose worker jobs ask SLURM for exactly that, and a module named in
``modules`` goes to its profile's workers. Progress, cancel and failures travel as in the Dask
engine; a worker whose SLURM job is cancelled, preempted or runs out of time takes its job with
it, which is run again ``lost_worker_retries`` times and then fails with that reason.

Every setting comes from the environment (prefix ``SLICER_CLOUD_SLURM_``; profiles and modules
as JSON), see docs/scale.md.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from slicer_cloud.compute.jobs.dask_engine import TOPIC, DaskEngine
from slicer_cloud.compute.jobs.dask_security import dask_security
from slicer_cloud.compute.jobs.spec import JobSpec
from slicer_cloud.errors import SlicerCloudError

log = logging.getLogger(__name__)
DEFAULT_PROFILE = "default"
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS")


class SlurmResources(BaseModel):
    """What one worker job asks SLURM for."""

    cores: int = Field(default=1, gt=0, le=1024, description="CPUs of the job (sbatch --cpus-per-task); the module may use them all.")
    memory: str = Field(default="4GiB", description="Memory of the job (sbatch --mem) and the worker's memory limit.")
    walltime: str = Field(default="01:00:00", description="Time limit of a worker job (sbatch -t), HH:MM:SS.")
    partition: str | None = Field(default=None, description="Partition (sbatch -p); none: the cluster's default.")
    gres: str | None = Field(default=None, description="Generic resources, e.g. gpu:1 (sbatch --gres).")
    account: str | None = Field(default=None, description="Account charged (sbatch -A).")
    extra_directives: list[str] = Field(default_factory=list, description="More #SBATCH lines, e.g. --constraint=avx2.")

    @field_validator("walltime")
    @classmethod
    def _walltime(cls, value: str) -> str:
        parts = value.split("-")[-1].split(":")
        if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"a SLURM time such as 01:00:00 or 2-00:00:00 is required, not {value!r}")
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        from dask.utils import parse_bytes

        try:
            if parse_bytes(value) <= 0:
                raise ValueError
        except (ValueError, TypeError):
            raise ValueError(f"a size such as 4GiB is required, not {value!r}") from None
        return value


class SlurmSettings(BaseSettings):
    """Where and how the SLURM engine starts its workers (environment prefix ``SLICER_CLOUD_SLURM_``)."""

    model_config = SettingsConfigDict(env_prefix="SLICER_CLOUD_SLURM_", extra="ignore")

    resources: SlurmResources = Field(default_factory=SlurmResources, description="The default profile's job resources.")
    profiles: dict[str, SlurmResources] = Field(default_factory=dict, description="Named resource profiles, e.g. {\"gpu\": {\"gres\": \"gpu:1\"}}.")
    modules: dict[str, str] = Field(default_factory=dict, description="Module name -> profile name; others use the default.")
    min_jobs: int = Field(default=0, ge=0, le=10000, description="Worker jobs kept even when idle.")
    max_jobs: int = Field(default=4, gt=0, le=10000, description="Most worker jobs of one profile at once (adaptive scaling).")
    lost_worker_retries: int = Field(default=1, ge=0, le=10, description="Times a job is run again when its worker's SLURM job ends under it.")
    scheduler_host: str = Field(default="127.0.0.1", description="Address the Dask scheduler listens on: the cluster network's address of this node (loopback: workers on this node only).")
    interface: str | None = Field(default=None, description="Network interface (e.g. ib0) for the scheduler and workers instead of scheduler_host.")
    log_directory: Path | None = Field(default=None, description="Folder for the worker jobs' SLURM output files.")
    shared_directory: Path = Field(default_factory=lambda: Path.home() / ".cache" / "slicer-cloud" / "slurm",
                                   description="A private folder compute nodes also see (a shared file system): the workers' TLS credentials of this run are handed over there and removed at the end.")
    local_directory: str | None = Field(default=None, description="Workers' scratch folder on the compute node, e.g. $TMPDIR.")
    python: str | None = Field(default=None, description="The Python on compute nodes; none: this one (a shared file system).")
    job_prologue: list[str] = Field(default_factory=list, description="Shell lines run before the worker, e.g. 'module load ...'.")

    def profile_for(self, module: str) -> str:
        return self.modules.get(module, DEFAULT_PROFILE)

    def resources_of(self, profile: str) -> SlurmResources:
        if profile == DEFAULT_PROFILE:
            return self.resources
        return self.profiles[profile]

    def check(self) -> None:
        missing = sorted({p for p in self.modules.values() if p != DEFAULT_PROFILE and p not in self.profiles})
        if missing:
            raise SlicerCloudError(f"SLURM settings: the modules setting names profiles that are not defined: {', '.join(missing)}.", status=500)


def make_cluster(settings: SlurmSettings, profile: str, security: Any) -> Any:
    """A dask-jobqueue SLURMCluster whose worker jobs have ``profile``'s resources; ``security``
    (from :func:`dask_security`) makes the scheduler and its workers speak mutual TLS."""
    import dask
    from dask_jobqueue import SLURMCluster

    resources = settings.resources_of(profile)
    directives = list(resources.extra_directives)
    if resources.gres:
        directives.append(f"--gres={resources.gres}")
    options: dict[str, Any] = dict(
        name=f"slicer-cloud-{profile}",
        job_name=f"slicer-cloud-{profile}",
        cores=1,  # one module at a time per worker ...
        processes=1,
        job_cpu=resources.cores,  # ... with all the job's CPUs for itself
        memory=resources.memory,
        walltime=resources.walltime,
        queue=resources.partition,
        account=resources.account,
        job_extra_directives=directives,
        job_script_prologue=list(settings.job_prologue),
        log_directory=str(settings.log_directory) if settings.log_directory else None,
        local_directory=settings.local_directory,
        python=settings.python,
        death_timeout=120,
        scheduler_options={"dashboard": False, **({} if settings.interface else {"host": settings.scheduler_host})},
        interface=settings.interface,
    )
    if security is not None:
        # dask-jobqueue writes the run's in-memory credentials there (0600 files) for the job scripts
        settings.shared_directory.mkdir(parents=True, exist_ok=True)
        os.chmod(settings.shared_directory, 0o700)
        options.update(security=security, protocol="tls://", shared_temp_directory=str(settings.shared_directory))
    if settings.log_directory:
        Path(settings.log_directory).mkdir(parents=True, exist_ok=True)
    # The scheduler reads these when it starts: how often a job may outlive its worker, and one
    # task per worker thread at a time (queued ones stay on the scheduler, so a worker that ends
    # takes only the job it was running with it).
    with dask.config.set({"distributed.scheduler.allowed-failures": settings.lost_worker_retries,
                          "distributed.scheduler.worker-saturation": 1.0}):
        try:
            cluster = SLURMCluster(**options)
        except (OSError, RuntimeError, ValueError) as error:
            raise SlicerCloudError(f"Cannot start the SLURM engine's scheduler ({profile}): {error}", status=500) from error
    cluster.adapt(minimum_jobs=settings.min_jobs, maximum_jobs=settings.max_jobs)
    return cluster


def check_slurm_reachable() -> None:
    """Fail early, with a clear reason, where ``sbatch`` cannot reach a controller."""
    import shutil
    import subprocess

    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        raise SlicerCloudError("The SLURM engine needs SLURM's commands (sbatch, squeue) on this machine's PATH.", status=500)
    try:
        done = subprocess.run(["squeue", "--noheader", "--me"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise SlicerCloudError("SLURM's controller did not answer squeue within 30 s.", status=500) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise SlicerCloudError(f"SLURM's controller cannot be reached (squeue: {last.strip()[:300]}).", status=500)


class SlurmEngine(DaskEngine):
    """Jobs as tasks on Dask workers that are SLURM jobs; one SLURMCluster per resource profile."""

    name = "slurm"

    def __init__(self, settings: SlurmSettings | None = None):
        self.settings = settings or SlurmSettings()
        self.settings.check()
        check_slurm_reachable()
        # a cluster of our own: credentials for this run (or the SLICER_CLOUD_DASK_TLS_* files)
        self._security = dask_security(new_cluster=True)
        self._profiles: dict[str, tuple[Any, Any]] = {}  # profile -> (cluster, client), besides the default
        self._profiles_lock = threading.Lock()
        cluster = make_cluster(self.settings, DEFAULT_PROFILE, self._security)
        try:
            super().__init__(cluster=cluster)
        except BaseException:
            cluster.close()
            raise
        self.workers = self.settings.max_jobs

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "scheduler": self.scheduler, "max_jobs": self.settings.max_jobs,
                "profiles": [DEFAULT_PROFILE, *sorted(self.settings.profiles)]}

    def _client_for(self, spec: JobSpec) -> Any:
        profile = self.settings.profile_for(spec.module)
        if profile == DEFAULT_PROFILE:
            return self._client
        with self._profiles_lock:
            if profile not in self._profiles:
                from distributed import Client

                cluster = make_cluster(self.settings, profile, self._security)
                client = Client(cluster, timeout="60s")
                client.subscribe_topic(TOPIC, self._on_event)
                self._profiles[profile] = (cluster, client)
            return self._profiles[profile][1]

    def _prepare(self, spec: JobSpec) -> JobSpec:
        # the module may use every CPU its worker job booked (one job runs per worker)
        cores = str(self.settings.resources_of(self.settings.profile_for(spec.module)).cores)
        spec.env = {**{name: cores for name in _THREAD_VARIABLES}, **spec.env}
        return spec

    def close(self) -> None:
        clusters = [self._cluster]
        try:
            super().close()
        finally:
            with self._profiles_lock:
                extra, self._profiles = list(self._profiles.values()), {}
            for cluster, client in extra:
                clusters.append(cluster)
                try:
                    client.close(timeout=10)
                finally:
                    cluster.close(timeout=30)
            for cluster in clusters:
                _remove_credentials(cluster)


def _remove_credentials(cluster: Any) -> None:
    """dask-jobqueue keeps the run's TLS files for the job scripts open as temporary files until the
    cluster object is collected; remove them when the engine closes."""
    for name in [n for n in vars(cluster) if n.startswith("_job_")]:
        handle = getattr(cluster, name)
        if hasattr(handle, "close") and hasattr(handle, "name"):
            try:
                handle.close()  # a NamedTemporaryFile: closing deletes it
            except OSError:
                pass
