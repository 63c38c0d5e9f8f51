"""Warm workers for Python modules: a fork server with numpy, scipy and the built-in modules
already imported, so a job's process starts in milliseconds instead of paying the interpreter
start and the imports (about half a second here) every time.

Each job still runs in a process of its own, forked from the warm server: its own session
(cancel and timeouts end its whole process group), its memory limit (``RLIMIT_AS``), its stdout
and stderr on pipes the job runner reads progress from, and death with its parent. A crash in a
job (a segfault, the memory limit) ends only that job's process; the warm server and the other
jobs go on. The server itself dies with the process that started it.

Only modules run as ``python -m PACKAGE.MODULE`` use it (the built-in ones, and Python modules
registered the same way); external CLIs are started directly with ``subprocess``, as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import IO, Any

#: what the server imports before its first fork (what a built-in module needs at start)
PRELOAD = (
    "numpy",
    "scipy.ndimage",
    "slicer_cloud.compute.imageio",
    "slicer_cloud.compute.modules.builtin._program",
    "slicer_cloud.compute.modules.builtin._volumes",
)
#: environment that must be right before numpy loads its BLAS (fork keeps what the server loaded)
SERVER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
_MAX_MESSAGE = 1024 * 1024


# --- the server (its own process) -------------------------------------------------------------
def _run_child(request: dict[str, Any], out_fd: int, err_fd: int, control: socket.socket) -> None:
    """In the forked child: become the job's process, run the module as ``__main__``, exit."""
    code = 1
    try:
        os.setsid()
        control.close()
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        os.close(out_fd)
        os.close(err_fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
        import resource

        if request.get("memory_bytes"):
            resource.setrlimit(resource.RLIMIT_AS, (request["memory_bytes"],) * 2)
        _set_parent_death_signal()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - the job's whole life
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.argv = [request["module"], *request["args"]]
        import random

        random.seed()  # forked children must not share the server's random state
        with contextlib.suppress(Exception):
            import numpy

            numpy.random.seed()
        import runpy

        try:
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
            if done.code is not None and not isinstance(done.code, int):
                print(done.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - as an interpreter would: traceback, exit 1
            import traceback

            traceback.print_exc()
            code = 1
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
    finally:
        os._exit(code)


def _set_parent_death_signal() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _exit_code(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def serve(control: socket.socket) -> None:
    """The server's loop: fork a child per request; report each child's pid and its exit."""
    import importlib
    import select

    for name in PRELOAD:
        importlib.import_module(name)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    control.sendall(b'{"ready": true}\n')
    children: set[int] = set()
    while True:
        readable, _, _ = select.select([control, wake_r], [], [])
        if wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 4096)
            while children:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                children.discard(pid)
                control.sendall(json.dumps({"exit": pid, "code": _exit_code(status)}).encode() + b"\n")
        if control in readable:
            try:
                message, fds, _flags, _addr = socket.recv_fds(control, _MAX_MESSAGE, 2)
            except OSError:
                return
            if not message:
                return  # the job runner went away
            request = json.loads(message)
            if len(fds) != 2:
                for fd in fds:
                    os.close(fd)
                control.sendall(json.dumps({"req": request.get("req"), "error": "no output pipes"}).encode() + b"\n")
                continue
            pid = os.fork()
            if pid == 0:
                _run_child(request, fds[0], fds[1], control)
            for fd in fds:
                os.close(fd)
            children.add(pid)
            control.sendall(json.dumps({"req": request["req"], "pid": pid}).encode() + b"\n")


# --- the client (in the job runner) -----------------------------------------------------------
class WarmProcess:
    """What :func:`~slicer_cloud.compute.jobs.execute.execute` needs of a ``Popen``: pid, the
    output pipes, ``wait``/``poll`` and ``returncode`` (negative: killed by that signal)."""

    def __init__(self, launcher: WarmLauncher, pid: int, stdout: IO[bytes], stderr: IO[bytes]):
        self._launcher = launcher
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._launcher._exit_of(self.pid, 0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            code = self._launcher._exit_of(self.pid, timeout)
            if code is None:
                raise subprocess.TimeoutExpired(f"job {self.pid}", timeout or 0)
            self.returncode = code
        return self.returncode


class WarmLauncher:
    """One warm fork server, started on first use and shared by every job of this process."""

    def __init__(self, start_timeout_s: float = 120.0):
        self._start_timeout_s = start_timeout_s
        self._lock = threading.Lock()  # one request on the control socket at a time
        self._cond = threading.Condition()
        self._exits: dict[int, int] = {}
        self._replies: dict[int, dict[str, Any]] = {}
        self._next = 0
        self._control: socket.socket | None = None
        self._server: subprocess.Popen | None = None
        self._dead = False

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ, **SERVER_ENV)
        started = threading.Event()
        failure: list[BaseException] = []

        def own_server() -> None:
            # The server dies with this thread (parent-death signal), so a thread that lives as
            # long as this process starts it, not a job's thread that may end.
            try:
                self._server = subprocess.Popen(
                    [sys.executable, "-c", "import sys, socket; from slicer_cloud.compute.jobs.warm import serve; "
                     f"serve(socket.socket(fileno={theirs.fileno()}))"],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env, preexec_fn=_set_parent_death_signal,
                )  # fmt: skip
            except BaseException as error:  # noqa: BLE001 - reported to the caller
                failure.append(error)
            finally:
                started.set()
            if self._server is not None:
                self._server.wait()

        threading.Thread(target=own_server, name="warm-job-server", daemon=True).start()
        started.wait()
        theirs.close()
        if failure:
            raise OSError(f"the warm worker could not be started: {failure[0]}")
        ours.settimeout(self._start_timeout_s)
        try:
            ready = ours.recv(_MAX_MESSAGE)
        except OSError as error:
            ours.close()
            raise OSError(f"the warm worker did not start: {error}") from error
        if not ready:
            ours.close()
            raise OSError("the warm worker exited while starting")
        ours.settimeout(None)
        self._control = ours
        threading.Thread(target=self._read, name="warm-job-reader", daemon=True).start()

    def _read(self) -> None:
        assert self._control is not None
        while True:
            try:
                data = self._control.recv(_MAX_MESSAGE)
            except OSError:
                data = b""
            if not data:
                with self._cond:
                    self._dead = True
                    self._cond.notify_all()
                return
            for line in data.splitlines():
                message = json.loads(line)
                with self._cond:
                    if "exit" in message:
                        self._exits[message["exit"]] = message["code"]
                    else:
                        self._replies[message["req"]] = message
                    self._cond.notify_all()

    def _exit_of(self, pid: int, timeout: float | None) -> int | None:
        with self._cond:
            self._cond.wait_for(lambda: pid in self._exits or self._dead, timeout)
            if pid in self._exits:
                return self._exits.pop(pid)
            if self._dead:
                return -signal.SIGKILL  # the warm server died: its children died with it
            return None

    @property
    def server_pid(self) -> int | None:
        return self._server.pid if self._server is not None else None

    def launch(self, module: str, args: list[str], *, cwd: str, env: dict[str, str], memory_bytes: int | None) -> WarmProcess:
        """Fork a job process running ``python -m module *args``; raises OSError if the warm
        server is unavailable (the caller then starts the module the ordinary way)."""
        with self._lock:
            if self._control is None or self._dead:
                self._dead = False
                self._start()
            assert self._control is not None
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            try:
                self._next += 1
                req = self._next
                request = {"req": req, "module": module, "args": args, "cwd": cwd, "env": env, "memory_bytes": memory_bytes}
                socket.send_fds(self._control, [json.dumps(request).encode()], [out_w, err_w])
            except OSError:
                for fd in (out_r, err_r):
                    os.close(fd)
                raise
            finally:
                os.close(out_w)
                os.close(err_w)
            with self._cond:
                self._cond.wait_for(lambda: req in self._replies or self._dead, 30)
                reply = self._replies.pop(req, None)
        if reply is None or "pid" not in reply:
            for fd in (out_r, err_r):
                os.close(fd)
            raise OSError("the warm worker did not start the job")
        return WarmProcess(self, reply["pid"], os.fdopen(out_r, "rb"), os.fdopen(err_r, "rb"))

    def close(self) -> None:
        if self._control is not None:
            with contextlib.suppress(OSError):
                self._control.close()
        if self._server is not None and self._server.poll() is None:
            self._server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._server.wait(timeout=5)


_shared: WarmLauncher | None = None
_shared_lock = threading.Lock()


def shared_launcher() -> WarmLauncher:
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = WarmLauncher()
        return _shared


def python_module(argv: list[str]) -> tuple[str, list[str]] | None:
    """``[python, -m, MODULE, *args]`` -> ``(MODULE, args)``; None for anything else."""
    if len(argv) >= 3 and argv[1] == "-m" and argv[2] and not argv[2].startswith("-"):
        return argv[2], argv[3:]
    return None
