"""Running one job: the module in its own process group, with a wall-time and a memory limit,
progress read from its stdout, and the whole process tree ended on cancel or timeout."""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slicer_cloud.compute.jobs import warm
from slicer_cloud.compute.jobs.spec import PYTHON, JobOutcome, JobSpec
from slicer_cloud.compute.modules.protocol import parse_progress

#: event name, payload: ("started", {"pid"}), ("progress", {"progress", "comment"}), ("log", {"line"})
Report = Callable[[str, dict[str, Any]], None]
Describe = Callable[[str, str, bool], dict[str, Any]]

log = logging.getLogger(__name__)
LOG_TAIL_LINES = 40


def warm_enabled() -> bool:
    """Warm workers are on unless ``SLICER_CLOUD_WARM_WORKERS=0`` (then every job is a fresh interpreter)."""
    return os.environ.get("SLICER_CLOUD_WARM_WORKERS", "1").strip().lower() not in ("0", "false", "no", "off")
_MAX_LINE = 2000


def _child_setup(memory_bytes: int | None) -> Callable[[], None]:
    """Runs in the child between fork and exec: the memory limit, and death with its parent
    (so a server killed with -9 leaves no module running; Linux only)."""

    def apply() -> None:
        import resource

        if memory_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        if _PRCTL is not None:
            _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return apply


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def _kill_tree(process: subprocess.Popen, grace_s: float = 2.0) -> None:
    """End the module and everything it started: its process group, then any stragglers."""
    try:
        import psutil

        children = psutil.Process(process.pid).children(recursive=True)
    except Exception:  # noqa: BLE001 - psutil missing or the process already gone
        children = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        for child in children:
            with contextlib.suppress(Exception):
                child.send_signal(sig)
        try:
            process.wait(timeout=grace_s)
            break
        except subprocess.TimeoutExpired:
            continue
    for child in children:
        with contextlib.suppress(Exception):
            child.wait(timeout=grace_s)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if -code in (signal.SIGKILL, signal.SIGSEGV) else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {code}"


def execute(
    spec: JobSpec,
    report: Report,
    should_cancel: Callable[[], bool],
    describe: Describe | None = None,
    poll_s: float = 0.1,
) -> JobOutcome:
    """Run ``spec`` to the end. Never raises for the module's failures: they are the outcome."""
    started = time.monotonic()
    workdir = Path(spec.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for output in spec.outputs:  # also after a restart emptied the working folder
        Path(output.path).parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable if word == PYTHON else word for word in spec.argv]
    env = dict(os.environ)
    # Parallelism comes from running several jobs; one job keeps to one thread of BLAS.
    env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    env.update(spec.env)
    tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
    stderr_tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
    lock = threading.Lock()
    process: Any = None
    target = warm.python_module(argv) if spec.argv[:1] == [PYTHON] and warm_enabled() else None
    if target is not None:
        try:  # Python modules: forked from the warm worker, numpy and scipy already imported
            process = warm.shared_launcher().launch(
                target[0], target[1], cwd=str(workdir), env=env, memory_bytes=spec.memory_bytes
            )
        except OSError as error:
            log.warning("Warm worker unavailable, starting the module the ordinary way: %s", error)
    try:
        process = process or subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: cancel ends the whole tree
            preexec_fn=_child_setup(spec.memory_bytes),
        )
    except OSError as error:
        return JobOutcome("failed", error=f"The module could not be started: {error.strerror or error}")
    report("started", {"pid": process.pid})

    def read_stdout() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")[:_MAX_LINE]
            update = parse_progress(line)
            if update is None:
                with lock:
                    tail.append(line)
                report("log", {"line": line})
            elif update.progress is not None or update.comment or update.name:
                report("progress", {"progress": update.progress, "comment": update.comment or update.name})

    def read_stderr() -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")[:_MAX_LINE]
            with lock:
                tail.append(line)
                stderr_tail.append(line)
            report("log", {"line": line})

    readers = [threading.Thread(target=read_stdout, daemon=True), threading.Thread(target=read_stderr, daemon=True)]
    for reader in readers:
        reader.start()
    outcome_state, error = None, None
    while True:
        try:
            process.wait(timeout=poll_s)
            break
        except subprocess.TimeoutExpired:
            pass
        if should_cancel():
            _kill_tree(process)
            outcome_state, error = "cancelled", "Cancelled on request."
            break
        if time.monotonic() - started > spec.wall_time_s:
            _kill_tree(process)
            outcome_state, error = "failed", f"The job ran past its time limit of {spec.wall_time_s:g} s and was stopped."
            break
    for reader in readers:
        reader.join(timeout=5)
    code = process.returncode
    with lock:
        log_tail = list(tail)
    outcome = JobOutcome(outcome_state or "succeeded", exit_code=code, error=error, log_tail=log_tail)
    if outcome_state is None and code != 0:
        last = next((line for line in reversed(stderr_tail) if line.strip()), "")
        outcome.state = "failed"
        outcome.error = f"The module {_describe_exit(code)}" + (f": {last.strip()}" if last else ".")
    if outcome.state == "succeeded":
        if spec.return_file and Path(spec.return_file).exists():
            outcome.return_text = Path(spec.return_file).read_text(errors="replace")[: 1024 * 1024]
        for output in spec.outputs:
            path = Path(output.path)
            if not path.exists():
                outcome.state = "failed"
                outcome.error = f"The module finished but did not write its output {output.parameter!r}."
                break
            if spec.describe_outputs and describe is not None:
                try:
                    outcome.outputs[output.parameter] = describe(str(path), output.kind, output.is_image)
                except Exception as failure:  # noqa: BLE001 - a bad output fails the job, with the reason
                    outcome.state = "failed"
                    outcome.error = f"The output {output.parameter!r} is not valid: {getattr(failure, 'message', failure)}"
                    break
    outcome.seconds = time.monotonic() - started
    return outcome
