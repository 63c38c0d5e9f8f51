"""The SLURM engine on a real single-node SLURM (Debian's slurm-wlm and munge, started by the
fixture): a batch through ``slicer-cloud run --engine slurm`` that loses a worker's SLURM job
midway, and the API on ``--engine slurm`` with a per-module resource profile, progress and cancel."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from slicer_cloud.client import Client
from tests.slurm import Slurm, running_slurm

from .conftest import BOX_VOXELS, MODULES_DIR, start_api, wait_for

CASES = 6


@pytest.fixture(scope="module")
def slurm() -> Iterator[Slurm]:
    with running_slurm() as cluster:
        yield cluster


def slurm_env(slurm: Slurm, tmp_path: Path, **settings: str) -> dict[str, str]:
    return {**slurm.env, "SLICER_CLOUD_SLURM_LOG_DIRECTORY": str(tmp_path / "slurm-logs"),
            "SLICER_CLOUD_SLURM_SHARED_DIRECTORY": str(tmp_path / "slurm-shared"),
            "SLICER_CLOUD_SLURM_RESOURCES": json.dumps({"memory": "1GiB", "walltime": "00:20:00"}), **settings}


def wait_for_workers_to_end(slurm: Slurm) -> None:
    """Adaptive scaling and closing the engine leave no worker job behind."""
    wait_for(lambda: not [j for j in slurm.jobs() if j["name"].startswith("slicer-cloud")], timeout_s=90, interval_s=1)


@pytest.mark.parametrize("retries", [0, 1])
def test_a_batch_goes_on_when_a_workers_slurm_job_is_killed(slurm: Slurm, tmp_path: Path, ct_file: Path, retries: int):
    inputs, marks, out = tmp_path / "in", tmp_path / "marks", tmp_path / "out"
    inputs.mkdir()
    marks.mkdir()
    for n in range(CASES):
        (inputs / f"case{n}.nrrd").write_bytes(ct_file.read_bytes())
    env = {**os.environ, **slurm_env(slurm, tmp_path, SLICER_CLOUD_SLURM_LOST_WORKER_RETRIES=str(retries)),
           "SLOW_COPY_MARKS": str(marks)}
    batch = subprocess.Popen(
        [sys.executable, "-m", "slicer_cloud.cli", "run", "slow_copy", "--set", "seconds=4", "--engine", "slurm",
         "--workers", "2", "--modules-path", str(MODULES_DIR), "--out", str(out), str(inputs)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        first = wait_for(lambda: sorted(marks.iterdir()), timeout_s=180, interval_s=0.2)[0]
        job_id, case = first.name.split("-", 1)
        slurm.command("scancel", job_id)  # the worker's SLURM job ends under a running case
        output, _ = batch.communicate(timeout=300)
    finally:
        if batch.poll() is None:
            batch.kill()
            batch.wait()
    rows = {Path(r["input"]).name: r for r in csv.DictReader(open(out / "summary.csv"))}
    assert len(rows) == CASES, output
    others = [r for name, r in rows.items() if name != case]
    assert [r["state"] for r in others] == ["succeeded"] * (CASES - 1), output
    killed = rows[case]
    if retries == 0:
        assert batch.returncode == 1
        assert killed["state"] == "failed"
        assert f"SLURM job {job_id}" in killed["error"] and "ended while running it" in killed["error"]
        assert "not run again" in killed["error"]
        assert not (out / f"{Path(case).stem}-slow_copy.nrrd").exists()
    else:
        assert batch.returncode == 0, output
        assert killed["state"] == "succeeded"
        assert f"(SLURM job {job_id}), which was running it, ended" in killed["notes"]
        assert f"job={job_id} " not in killed["ran_on"]  # it finished on another worker job
    assert {r["ran_on"].split()[1] for r in rows.values() if r["ran_on"]} - {f"job={job_id}"}  # ran on SLURM jobs
    assert (out / f"{Path(others[0]['input']).stem}-slow_copy.nrrd").read_bytes() == ct_file.read_bytes()
    assert list((tmp_path / "slurm-shared").iterdir()) == []  # the run's TLS credentials for the job scripts are gone
    wait_for_workers_to_end(slurm)


def test_the_api_runs_jobs_on_slurm_with_per_module_resources(slurm: Slurm, tmp_path: Path, ct_file: Path):
    data = tmp_path / "data"
    data.mkdir()
    env = slurm_env(slurm, tmp_path, SLICER_CLOUD_SLURM_PROFILES=json.dumps({"wide": {"cores": 2, "memory": "1GiB", "walltime": "00:20:00"}}),
                    SLICER_CLOUD_SLURM_MODULES=json.dumps({"slow_copy": "wide"}), SLICER_CLOUD_SLURM_MAX_JOBS="1")
    server = start_api(data, "--engine", "slurm", "--modules-path", str(MODULES_DIR), env=env, timeout_s=180)
    try:
        engine = httpx.get(server.base + "/api/info", headers=server.headers).json()["engine"]
        assert engine["engine"] == "slurm" and engine["profiles"] == ["default", "wide"] and engine["max_jobs"] == 1
        assert engine["scheduler"].startswith("tls://127.0.0.1:")  # worker jobs connect with this run's TLS credentials
        with Client(server.base, server.token) as client:
            scan = client.upload(ct_file)
            seen: list[dict] = []
            mask = client.run("threshold", {"input": scan["id"], "lower": 100, "upper": 1000}, timeout_s=240, progress=seen.append)
            assert mask["state"] == "succeeded" and mask["return_parameters"] == {"voxel_count": BOX_VOXELS}
            assert any(event.get("progress") for event in seen)  # progress came back from the SLURM worker
            wide = client.run("slow_copy", {"input": scan["id"], "seconds": 1}, timeout_s=240)
            host, job, threads = wide["return_parameters"]["ran_on"].split()
            assert threads == "threads=2"  # the module gets the cores its profile booked
            cpus = slurm.command("squeue", "--noheader", "--states=all", "--format=%C|%j", "--jobs", job.split("=")[1]).strip()
            assert cpus == "2|slicer-cloud-wide"
            slow = client.submit("sleeper", {"seconds": 300})
            wait_for(lambda: client.job(slow["id"])["state"] == "running", timeout_s=120)
            assert client.cancel(slow["id"])["state"] == "cancelled"
            failed = client.run("sleeper", {"seconds": 0, "mode": "crash"}, timeout_s=120, check=False)
            assert failed["state"] == "failed" and "exited with code 3" in failed["error"]
    finally:
        server.stop()
    wait_for_workers_to_end(slurm)


def test_the_slurm_engine_refuses_bad_settings_with_a_reason(tmp_path: Path):
    env = {**os.environ, "SLICER_CLOUD_SLURM_MODULES": json.dumps({"threshold": "gpu"})}
    done = subprocess.run([sys.executable, "-m", "slicer_cloud.cli", "run", "threshold", "--set", "lower=1", "--set", "upper=2",
                           "--engine", "slurm", "--out", str(tmp_path / "out"), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "names profiles that are not defined: gpu" in done.stderr
    env = {**os.environ, "SLICER_CLOUD_SLURM_RESOURCES": json.dumps({"walltime": "soon"})}
    done = subprocess.run([sys.executable, "-m", "slicer_cloud.cli", "run", "threshold", "--set", "lower=1", "--set", "upper=2",
                           "--engine", "slurm", "--out", str(tmp_path / "out"), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "01:00:00" in done.stderr, done.stderr


def test_a_profiles_worker_job_asks_slurm_for_its_resources(tmp_path: Path):
    # What sbatch receives for a GPU profile (no GPU here to run it on): the job script itself.
    from slicer_cloud.compute.jobs.dask_security import dask_security
    from slicer_cloud.compute.jobs.slurm import SlurmSettings, make_cluster

    settings = SlurmSettings(
        profiles={"gpu": {"cores": 8, "memory": "32GiB", "walltime": "02:00:00", "partition": "gpu", "gres": "gpu:1",
                          "account": "lab", "extra_directives": ["--constraint=a100"]}},
        modules={"segment_ct": "gpu"}, job_prologue=["module load cuda"], shared_directory=tmp_path / "shared",
    )
    cluster = make_cluster(settings, settings.profile_for("segment_ct"), dask_security(new_cluster=True))
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -J slicer-cloud-gpu", "#SBATCH -p gpu", "#SBATCH -A lab", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --mem=32G", "#SBATCH -t 02:00:00", "#SBATCH --gres=gpu:1", "#SBATCH --constraint=a100",
                 "module load cuda"):
        assert line in script, (line, script)
    assert "--nthreads 1" in script and "tls://127.0.0.1:" in script  # one module at a time, over TLS
    assert settings.profile_for("threshold") == "default"
