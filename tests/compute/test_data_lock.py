"""One compute API per data folder: a second one refuses to start (it would sweep the first
one's uploads and re-run its jobs), the first keeps serving, and the lock dies with its owner."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx

from .conftest import TOKEN, start_api


def _second_api(data) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "slicer_cloud.cli", "api", "--data", str(data), "--port", "0", "--token", TOKEN]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError("a second API on the same data folder started and kept running:\n" + out + err) from None
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def test_a_second_api_on_the_same_data_folder_refuses_to_start(tmp_path):
    first = start_api(tmp_path)
    try:
        staged = tmp_path / ".slicer-cloud" / "uploads"
        staged.mkdir(parents=True, exist_ok=True)
        in_flight = staged / "in-flight.upload"  # an upload the first API is receiving
        in_flight.write_bytes(b"partial")

        second = _second_api(tmp_path)
        assert second.returncode == 2
        assert "already serves the data folder" in second.stderr and str(tmp_path) in second.stderr
        assert "compute API (process" in second.stderr  # names who holds it
        assert "Traceback" not in second.stderr
        assert in_flight.exists()  # the refused one swept nothing
        assert httpx.get(first.base + "/api/health", timeout=10).status_code == 200
    finally:
        first.stop(signal.SIGKILL)  # even a killed owner releases the folder

    again = start_api(tmp_path)
    try:
        assert httpx.get(again.base + "/api/health", timeout=10).status_code == 200
    finally:
        again.stop()
