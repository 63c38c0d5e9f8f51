"""The compute API and batch runs with a real Orthanc: a series registered as an item, a job's
label map stored back as DICOM SEG, a batch over a QIDO query with per-series failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import numpy as np
import pytest

from tests.compute.conftest import start_api
from tests.dicomweb.orthanc import phantom_datasets


@pytest.fixture(scope="module")
def compute_study(conn):
    """One study with two CT series (and nothing else)."""
    from pydicom.uid import generate_uid

    study_uid = generate_uid()
    series = []
    for n, description in enumerate(("Compute A", "Compute B")):
        phantom, datasets = phantom_datasets(shape=(48, 40, 12), description=description)
        for ds in datasets:
            ds.StudyInstanceUID = study_uid
            ds.SeriesNumber = n + 1
            ds.StudyDescription = "Compute study"
        conn.client.store_instances(datasets)
        series.append((phantom, datasets))
    return study_uid, series


@pytest.fixture(scope="module")
def compute_api(orthanc, tmp_path_factory):
    env = orthanc.servers_env("orthanc")
    server = start_api(tmp_path_factory.mktemp("compute-dw"), "--workers", "2", env=env)
    yield server
    server.stop()


def wait_job(client: httpx.Client, job_id: str, timeout: float = 180) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish")


def test_api_registers_a_series_and_stores_a_job_output_as_seg(compute_api, compute_study, conn):
    from slicer_cloud.dicomweb import retrieve, seg as segmod
    from slicer_cloud.dicomweb.reference import SeriesRef

    study, series = compute_study
    phantom, datasets = series[0]
    ref = f"dicomweb:orthanc/{study}/{datasets[0].SeriesInstanceUID}"
    with httpx.Client(base_url=compute_api.base, headers=compute_api.headers, timeout=120) as client:
        assert client.get("/api/dicomweb/servers").json() == [{"name": "orthanc"}]
        found = client.get("/api/dicomweb/studies", params={"server": "orthanc", "description": "Compute study"}).json()
        assert [s["study"] for s in found] == [study]
        listed = client.get(f"/api/dicomweb/studies/{study}/series", params={"server": "orthanc"}).json()
        assert [s["description"] for s in listed] == ["Compute A", "Compute B"]

        response = client.post("/api/dicomweb/items", json={"reference": ref})
        assert response.status_code == 201, response.text
        item = response.json()
        assert item["kind"] == "volume" and item["source"] == {"type": "dicomweb", "reference": ref}
        assert tuple(item["dimensions"]) == phantom.shape

        job = client.post("/api/jobs", json={"module": "threshold", "parameters": {"input": item["id"], "lower": 200, "upper": 3000}})
        assert job.status_code in (200, 201, 202), job.text
        job = wait_job(client, job.json()["id"])
        assert job["state"] == "succeeded", job
        [output] = job["outputs"]
        stored = client.post("/api/dicomweb/seg", json={"item": output})  # the source series comes from the job
        assert stored.status_code == 200, stored.text
        seg_ref = stored.json()["reference"]

        # bad requests get reasons
        wrong = client.post("/api/dicomweb/items", json={"reference": "dicomweb:orthanc/1.2/3.x"})
        assert wrong.status_code == 400 and "UID" in wrong.json()["detail"]
        nowhere = client.post("/api/dicomweb/items", json={"reference": "dicomweb:pacs2/1.2/3.4"})
        assert nowhere.status_code == 404 and "no DICOMweb server named 'pacs2'" in nowhere.json()["detail"]
        itself = client.post("/api/dicomweb/seg", json={"item": item["id"]})
        assert itself.status_code == 422

    seg_series = SeriesRef(*seg_ref[len("dicomweb:"):].split("/"))
    seg, source = segmod.referenced_series(conn, seg_series)
    assert str(source) == ref
    labels = segmod.seg_on_volume(seg, retrieve.describe(conn, source), seg_series).labels
    expected = ((phantom.array >= 200) & (phantom.array <= 3000)).astype(np.uint8)
    assert expected.any() and np.array_equal(labels, expected)


def test_batch_over_a_qido_query_stores_segs_and_reports_failures(orthanc, compute_study, conn, tmp_path):
    from slicer_cloud.dicomweb.search import search_series

    study, series = compute_study
    env = {**os.environ, **orthanc.servers_env("orthanc")}
    out = tmp_path / "out"
    command = [sys.executable, "-m", "slicer_cloud.cli", "run", "threshold", f"dicomweb:orthanc?Modality=CT&StudyInstanceUID={study}",
               "dicomweb:orthanc/1.2.3/4.5.6", "--set", "lower=200", "--set", "upper=3000", "--out", str(out), "--to-pacs",
               "--workers", "2"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr  # one case failed, the batch went on
    summary = (out / "summary.csv").read_text().splitlines()
    assert len(summary) == 4
    rows = {line.split(",")[0]: line for line in summary[1:]}
    for _phantom, datasets in series:
        row = rows[f"dicomweb:orthanc/{study}/{datasets[0].SeriesInstanceUID}"]
        assert ",succeeded," in row and "SEG dicomweb:orthanc/" in row
    assert ",failed," in rows["dicomweb:orthanc/1.2.3/4.5.6"] and "no such data" in rows["dicomweb:orthanc/1.2.3/4.5.6"]
    segs = [s for s in search_series(conn, study) if s["modality"] == "SEG"]
    assert len(segs) >= 2
