"""Warm workers: Python modules' job processes are forked from one warm server that has numpy
already imported; each job keeps its own process (progress, cancel, memory limit), and a crash
in one job fails that job only."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from slicer_cloud.compute.jobs import warm
from slicer_cloud.compute.jobs.execute import execute
from slicer_cloud.compute.jobs.spec import PYTHON, JobSpec

PROBE = """
import json, os, sys
print(json.dumps({"ppid": os.getppid(), "pid": os.getpid(), "numpy_at_start": "numpy" in sys.modules,
                  "pgid": os.getpgid(0), "argv": sys.argv[1:]}), flush=True)
print("<filter-progress>0.5</filter-progress>", flush=True)
mode = sys.argv[1] if len(sys.argv) > 1 else ""
if mode == "segfault":
    import ctypes
    ctypes.string_at(0)
elif mode == "sleep":
    import time
    time.sleep(600)
elif mode == "allocate":
    import numpy
    numpy.ones(400 * 1024 * 1024, dtype=numpy.uint8)
elif mode == "fail":
    sys.exit("the input is not a volume")
"""


def _spec(tmp: Path, name: str, *args: str, memory_bytes: int | None = None) -> JobSpec:
    workdir = tmp / name
    workdir.mkdir()
    (workdir / "warm_probe.py").write_text(PROBE)
    return JobSpec(job_id=name, module="probe", argv=[PYTHON, "-m", "warm_probe", *args], workdir=str(workdir),
                   wall_time_s=120, memory_bytes=memory_bytes)  # fmt: skip


def _run(spec: JobSpec, cancel_after_start: bool = False):
    events: list[tuple[str, dict]] = []
    started = threading.Event()

    def report(event: str, payload: dict) -> None:
        events.append((event, payload))
        if event == "started":
            started.set()

    outcome = execute(spec, report, lambda: cancel_after_start and started.is_set() and _probe_printed(events))
    probe = next((json.loads(p["line"]) for e, p in events if e == "log" and p["line"].startswith("{")), None)
    return outcome, events, probe


def _probe_printed(events) -> bool:
    return any(e == "log" and p["line"].startswith("{") for e, p in events)


def test_two_jobs_run_in_processes_forked_from_one_warm_worker(tmp_path):
    first, events, probe1 = _run(_spec(tmp_path, "a", "x"))
    second, _, probe2 = _run(_spec(tmp_path, "b", "y"))
    assert first.state == second.state == "succeeded", (first.error, second.error)
    server = warm.shared_launcher().server_pid
    assert server is not None and probe1["ppid"] == probe2["ppid"] == server
    assert probe1["numpy_at_start"] and probe2["numpy_at_start"]  # imported once, before the jobs
    assert probe1["pid"] != probe2["pid"] and probe1["pgid"] == probe1["pid"]  # its own process group
    assert probe1["argv"] == ["x"] and probe2["argv"] == ["y"]
    assert ("progress", {"progress": 0.5, "comment": None}) in [(e, p) for e, p in events if e == "progress"]


def test_a_crash_in_one_job_fails_only_that_job(tmp_path):
    crashed, _, probe = _run(_spec(tmp_path, "crash", "segfault"))
    assert crashed.state == "failed" and "SIGSEGV" in crashed.error
    after, _, probe_after = _run(_spec(tmp_path, "after"))
    assert after.state == "succeeded"
    assert probe_after["ppid"] == probe["ppid"]  # the same warm worker went on
    failed, _, _ = _run(_spec(tmp_path, "fail", "fail"))
    assert failed.state == "failed" and "the input is not a volume" in failed.error


def test_cancel_and_memory_limit_still_hold(tmp_path):
    start = time.monotonic()
    cancelled, _, probe = _run(_spec(tmp_path, "sleep", "sleep"), cancel_after_start=True)
    assert cancelled.state == "cancelled" and time.monotonic() - start < 60
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(probe["pid"], 0)
    limited, _, _ = _run(_spec(tmp_path, "big", "allocate", memory_bytes=300 * 1024 * 1024))
    assert limited.state == "failed" and "MemoryError" in limited.error
