"""The Dask engine on a real LocalCluster: through the API and through ``slicer-cloud run``."""

from __future__ import annotations

import csv
import subprocess
import sys

import httpx
import pytest

from slicer_cloud.client import Client

from .conftest import BOX_ML, BOX_VOXELS, MODULES_DIR, start_api, wait_for


def test_jobs_run_on_a_dask_local_cluster(tmp_path, ct_file):
    data = tmp_path / "data"
    data.mkdir()
    server = start_api(data, "--engine", "dask", "--workers", "1", "--modules-path", str(MODULES_DIR))
    try:
        engine = httpx.get(server.base + "/api/info", headers=server.headers).json()["engine"]
        assert engine["engine"] == "dask" and engine["scheduler"].startswith("tls://127.0.0.1:")
        with Client(server.base, server.token) as client:
            scan = client.upload(ct_file)
            seen: list[dict] = []
            mask = client.run("threshold", {"input": scan["id"], "lower": 100, "upper": 1000}, timeout_s=120, progress=seen.append)
            assert mask["return_parameters"] == {"voxel_count": BOX_VOXELS}
            assert any(event.get("progress") for event in seen)  # progress came back from the worker
            assert client.item(mask["outputs"][0])["kind"] == "segmentation"
            stats = client.run("segment_statistics", {"segmentation": mask["outputs"][0]}, timeout_s=120)
            assert stats["return_parameters"]["total_volume_ml"] == pytest.approx(BOX_ML)
            # cancel reaches a task running on a worker
            slow = client.submit("sleeper", {"seconds": 300})
            wait_for(lambda: client.job(slow["id"])["state"] == "running", timeout_s=60)
            assert client.cancel(slow["id"])["state"] == "cancelled"
    finally:
        server.stop()


def test_slicer_cloud_run_on_dask(tmp_path, ct_file):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for n in range(3):
        (inputs / f"case{n}.nrrd").write_bytes(ct_file.read_bytes())
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "slicer_cloud.cli", "run", "threshold", "--set", "lower=100", "--set", "upper=1000",
         "--engine", "dask", "--workers", "2", "--out", str(out), str(inputs)],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [r["state"] for r in rows] == ["succeeded"] * 3
    assert all(r["voxel_count"] == str(BOX_VOXELS) for r in rows)
    assert sorted(p.name for p in out.iterdir()) == ["case0-threshold.nrrd", "case1-threshold.nrrd", "case2-threshold.nrrd", "summary.csv"]
