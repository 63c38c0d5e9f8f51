"""Faults in the compute API, made with kill -9: a job's process (the job ends failed with a
reason, never stuck running, and the queue goes on) and the API itself in the middle of an
upload (no partial file ever visible; a restart finds a consistent index)."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import numpy as np

from slicer_cloud.core.nrrd_io import write_nrrd

from .conftest import MODULES_DIR, start_api, wait_for


def test_kill_9_of_a_jobs_process_fails_the_job_and_the_queue_goes_on(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    server = start_api(data, "--workers", "1", "--modules-path", str(MODULES_DIR))
    try:
        with httpx.Client(base_url=server.base, headers=server.headers, timeout=60) as http:
            job = http.post("/api/jobs", json={"module": "sleeper", "parameters": {"seconds": 300}}).json()
            queued = http.post("/api/jobs", json={"module": "sleeper", "parameters": {"seconds": 0.2}}).json()
            running = wait_for(lambda: (j := http.get(f"/api/jobs/{job['id']}").json())["state"] == "running"
                               and (j.get("comment") or "").startswith("pids") and j, timeout_s=90)
            os.kill(int(running["comment"].split()[1]), signal.SIGKILL)
            ended = wait_for(lambda: (j := http.get(f"/api/jobs/{job['id']}").json())["state"] not in ("queued", "running") and j,
                             timeout_s=90)
            assert ended["state"] in ("failed", "interrupted"), ended
            assert ended["error"] and "SIGKILL" in ended["error"] or "killed" in (ended["error"] or "").lower(), ended
            assert ended["finished"]
            after = wait_for(lambda: (j := http.get(f"/api/jobs/{queued['id']}").json())["state"] in ("succeeded", "failed") and j,
                             timeout_s=120)
            assert after["state"] == "succeeded", after
            assert http.get("/api/health").status_code == 200
    finally:
        server.stop()


def test_kill_9_of_the_api_mid_upload_leaves_nothing_partial(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    # 2 MiB of noise (incompressible): half of it reaches the server's disk before the kill
    array = np.random.default_rng(1).integers(-1000, 1000, size=(32, 128, 256), dtype=np.int16)
    source = tmp_path / "upload.nrrd"
    write_nrrd(source, array, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    payload = source.read_bytes()
    server = start_api(data, "--workers", "1")
    sent = threading.Event()

    def slow_body():
        # the multipart body by hand, so that it can stall half-way
        boundary = b"faultboundary"
        yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="upload.nrrd"\r\n' \
              b"Content-Type: application/octet-stream\r\n\r\n"
        half = len(payload) // 2
        yield payload[:half]
        sent.set()
        time.sleep(120)  # the server is killed meanwhile
        yield payload[half:] + b"\r\n--" + boundary + b"--\r\n"

    def upload():
        try:
            httpx.post(server.base + "/api/items", content=slow_body(), timeout=180,
                       headers={**server.headers, "Content-Type": "multipart/form-data; boundary=faultboundary"})
        except httpx.HTTPError:
            pass  # the connection dies with the server

    thread = threading.Thread(target=upload, daemon=True)
    thread.start()
    try:
        assert sent.wait(60)
        staging = data / ".slicer-cloud" / "uploads"
        wait_for(lambda: staging.exists() and any(p.is_file() and p.stat().st_size > 0 for p in staging.rglob("*")), timeout_s=60)
        server.stop(signal.SIGKILL)
    finally:
        server.stop()
    items = data / ".slicer-cloud" / "items"
    assert not any(p.is_file() for p in items.rglob("*")) if items.exists() else True  # nothing half-written became an item

    again = start_api(data, "--workers", "1")
    try:
        with httpx.Client(base_url=again.base, headers=again.headers, timeout=60) as http:
            assert http.get("/api/items").json()["total"] == 0
            assert not any(p.is_file() for p in (data / ".slicer-cloud" / "uploads").rglob("*"))  # the partial upload is gone
            stored = http.post("/api/items", files={"file": ("upload.nrrd", payload)})  # and uploads work again
            assert stored.status_code == 201
            listed = http.get("/api/items").json()
            assert listed["total"] == 1 and listed["items"][0]["sha256"] == stored.json()["sha256"]
    finally:
        again.stop()
