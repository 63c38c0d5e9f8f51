"""The local engine and the job runner, with a real CLI module (tests/compute/modules/sleeper):
cancel ends the whole process tree, the time limit holds, a crash becomes a failed outcome."""

from __future__ import annotations

import threading

import pytest

from slicer_cloud.compute.jobs.engine import LocalEngine
from slicer_cloud.compute.jobs.spec import JobOutcome, JobSpec, OutputSpec
from slicer_cloud.compute.modules.registry import Registry

from .conftest import MODULES_DIR, pid_alive, wait_for


class Recorder:
    """A job listener that keeps everything it hears."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.outcomes: dict[str, JobOutcome] = {}
        self.done = threading.Event()

    def started(self, job_id: str) -> None:
        self.events.append(("started", job_id))

    def progress(self, job_id: str, progress, comment) -> None:
        self.events.append(("progress", (progress, comment)))

    def log(self, job_id: str, line: str) -> None:
        self.events.append(("log", line))

    def finished(self, job_id: str, outcome: JobOutcome) -> None:
        self.outcomes[job_id] = outcome
        self.done.set()


@pytest.fixture(scope="module")
def sleeper():
    return Registry([MODULES_DIR]).get("sleeper")


def _spec(entry, tmp_path, job_id: str, wall_time_s: float = 60, **values) -> JobSpec:
    report = tmp_path / job_id / "report.txt"
    return_file = tmp_path / job_id / "ret.txt"
    argv = entry.command + entry.descriptor.command_line(entry.descriptor.validate(values), {"report": str(report)}, return_file)
    return JobSpec(job_id, "sleeper", argv, str(tmp_path / job_id), [OutputSpec("report", str(report), "file")],
                   str(return_file), wall_time_s=wall_time_s, describe_outputs=False)


def test_modules_path_executables_join_the_registry(sleeper):
    assert sleeper.descriptor.title == "Sleeper" and not sleeper.builtin
    assert sleeper.descriptor.parameter("mode").elements == ["sleep", "crash", "child"]


def test_a_job_reports_progress_and_return_parameters(sleeper, tmp_path):
    engine = LocalEngine(1)
    recorder = Recorder()
    try:
        engine.submit(_spec(sleeper, tmp_path, "ok", seconds=0.2), recorder)
        assert recorder.done.wait(30)
    finally:
        engine.close()
    outcome = recorder.outcomes["ok"]
    assert outcome.state == "succeeded" and outcome.exit_code == 0
    progress = [p for kind, (p, _c) in [e for e in recorder.events if e[0] == "progress"] if p is not None]
    assert progress and progress[-1] == 1.0 and progress == sorted(progress)
    assert outcome.return_text.startswith("pids = ")


def test_cancel_ends_the_whole_process_tree(sleeper, tmp_path):
    engine = LocalEngine(1)
    recorder = Recorder()
    try:
        engine.submit(_spec(sleeper, tmp_path, "tree", seconds=300, mode="child"), recorder)
        comment = wait_for(lambda: next((c for k, (p, c) in [e for e in recorder.events if e[0] == "progress"] if c and c.startswith("pids")), None))
        pids = [int(p) for p in comment.split()[1:]]
        assert len(pids) == 2 and all(pid_alive(p) for p in pids)
        engine.cancel("tree")
        assert recorder.done.wait(30)
    finally:
        engine.close()
    assert recorder.outcomes["tree"].state == "cancelled"
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout_s=10)


def test_the_wall_time_limit_stops_a_job(sleeper, tmp_path):
    engine = LocalEngine(1)
    recorder = Recorder()
    try:
        engine.submit(_spec(sleeper, tmp_path, "slow", wall_time_s=0.5, seconds=300), recorder)
        assert recorder.done.wait(30)
    finally:
        engine.close()
    outcome = recorder.outcomes["slow"]
    assert outcome.state == "failed" and "time limit of 0.5 s" in outcome.error


def test_a_crash_fails_with_the_exit_code_and_stderr(sleeper, tmp_path):
    engine = LocalEngine(1)
    recorder = Recorder()
    try:
        engine.submit(_spec(sleeper, tmp_path, "crash", mode="crash"), recorder)
        assert recorder.done.wait(30)
    finally:
        engine.close()
    outcome = recorder.outcomes["crash"]
    assert outcome.state == "failed" and outcome.exit_code == 3
    assert "exited with code 3" in outcome.error and "something went wrong on purpose" in outcome.error
    assert "about to fail" in outcome.log_tail


def test_a_queued_job_cancelled_before_it_starts_never_runs(sleeper, tmp_path):
    engine = LocalEngine(1)
    recorder = Recorder()
    try:
        engine.submit(_spec(sleeper, tmp_path, "first", seconds=1.0), recorder)
        engine.submit(_spec(sleeper, tmp_path, "second", seconds=1.0), recorder)
        engine.cancel("second")
        wait_for(lambda: len(recorder.outcomes) == 2, timeout_s=30)
    finally:
        engine.close()
    assert recorder.outcomes["first"].state == "succeeded"
    assert recorder.outcomes["second"].state == "cancelled"
    assert ("started", "second") not in recorder.events
