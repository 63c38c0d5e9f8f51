"""Durability: a server killed with -9 during a running job comes back with that job
``interrupted`` (never stuck in ``running``), no partial output item, and no module left running."""

from __future__ import annotations

import signal

import httpx

from .conftest import MODULES_DIR, pid_alive, start_api, wait_for


def test_kill_9_during_a_job_leaves_it_interrupted(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    server = start_api(data, "--workers", "1", "--modules-path", str(MODULES_DIR))
    try:
        http = httpx.Client(base_url=server.base, headers=server.headers, timeout=60)
        items_before = http.get("/api/items").json()["total"]
        job = http.post("/api/jobs", json={"module": "sleeper", "parameters": {"seconds": 300}}).json()
        queued = http.post("/api/jobs", json={"module": "sleeper", "parameters": {"seconds": 0.2}}).json()
        running = wait_for(lambda: (j := http.get(f"/api/jobs/{job['id']}").json())["state"] == "running"
                           and (j.get("comment") or "").startswith("pids") and j, timeout_s=60)
        module_pid = int(running["comment"].split()[1])
        server.stop(signal.SIGKILL)
        http.close()
    finally:
        server.stop()
    # the module dies with the server (it is not left running, writing into the store)
    wait_for(lambda: not pid_alive(module_pid), timeout_s=10)

    again = start_api(data, "--workers", "1", "--modules-path", str(MODULES_DIR))
    try:
        http = httpx.Client(base_url=again.base, headers=again.headers, timeout=60)
        after = http.get(f"/api/jobs/{job['id']}").json()
        assert after["state"] == "interrupted" and after["outputs"] == []
        assert "server stopped" in after["error"] and after["finished"]
        running_now = {j["id"] for j in http.get("/api/jobs", params={"state": "running"}).json()["jobs"]}
        assert running_now <= {queued["id"]}  # only the requeued job can be running now
        assert http.get("/api/items").json()["total"] == items_before
        assert list((data / ".slicer-cloud" / "jobs").iterdir()) in ([], [data / ".slicer-cloud" / "jobs" / queued["id"]])
        # the job that was still queued runs after the restart
        done = wait_for(lambda: (j := http.get(f"/api/jobs/{queued['id']}").json())["state"] in ("succeeded", "failed") and j, timeout_s=60)
        assert done["state"] == "succeeded" and len(done["outputs"]) == 1
        http.close()
    finally:
        again.stop()
