"""The reader worker pool: a crash fails only the call that caused it, time limits count from
when a call starts (not its wait in the queue), and every worker has a memory limit."""

from __future__ import annotations

import concurrent.futures
import threading

import pytest

from slicer_cloud.compute.workers import WorkerPool
from slicer_cloud.errors import SlicerCloudError

from . import pool_tasks
from .conftest import wait_for


@pytest.fixture
def pool():
    created: list[WorkerPool] = []

    def make(workers: int, **kwargs) -> WorkerPool:
        created.append(WorkerPool("test", workers, **kwargs))
        return created[-1]

    yield make
    for each in created:
        each.close()


def _in_thread(fn, *args, **kwargs) -> concurrent.futures.Future:
    """Run a blocking pool call in a thread of its own, as the API's job threads do."""
    future: concurrent.futures.Future = concurrent.futures.Future()

    def target() -> None:
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - handed to the test
            future.set_exception(error)

    threading.Thread(target=target, daemon=True).start()
    return future


def test_a_crash_fails_only_the_call_that_caused_it(pool, tmp_path):
    workers = pool(2)
    release = tmp_path / "release"
    # the first worker runs a long, healthy call (a finished job's output check, say)
    healthy = _in_thread(workers.call, pool_tasks.wait_for_file, str(release))
    wait_for(lambda: (tmp_path / "release.started").exists(), 120)
    # a second one crashes the way a C++ reader aborts on an impossible allocation
    with pytest.raises(SlicerCloudError) as crashed:
        workers.call(pool_tasks.crash)
    assert crashed.value.status == 422 and "crashed" in crashed.value.message
    release.touch()
    assert healthy.result(timeout=120) == "released"
    # and the pool keeps working, in a fresh worker where the crashed one was
    assert workers.call(pool_tasks.wait_for_file, str(release)) == "released"


def test_a_time_limit_counts_from_the_start_of_the_call_not_the_queue(pool, tmp_path):
    workers = pool(1)
    release = tmp_path / "release"
    first = _in_thread(workers.call, pool_tasks.wait_for_file, str(release), timeout_s=120)
    wait_for(lambda: (tmp_path / "release.started").exists(), 120)
    # queued behind the first call for longer than its own limit, but quick once it runs
    second = _in_thread(workers.call, pool_tasks.pid, timeout_s=3)
    threading.Timer(6.0, release.touch).start()
    assert first.result(timeout=120) == "released"
    assert isinstance(second.result(timeout=120), int)


def test_a_call_past_its_time_limit_ends_its_worker_only(pool, tmp_path):
    workers = pool(1)
    with pytest.raises(SlicerCloudError) as late:
        workers.call(pool_tasks.wait_for_file, str(tmp_path / "never"), timeout_s=2)
    assert late.value.status == 504
    assert isinstance(workers.call(pool_tasks.pid), int)


def test_workers_have_a_memory_limit(pool):
    workers = pool(1, memory_bytes=1024**3)
    with pytest.raises(SlicerCloudError) as refused:
        workers.call(pool_tasks.allocate, 3 * 1024**3)
    assert refused.value.status == 422 and "memory" in refused.value.message
    assert workers.call(pool_tasks.allocate, 16 * 1024**2) == 16 * 1024**2
