"""One owner for every process of a desktop: the X server, the window manager and the programs.

Contract:

* :meth:`Supervisor.start` runs a program in its own process group (so stopping it also ends
  whatever it forked) and keeps the tail of its output for error reports.
* A program that exits is reported in the log. An *essential* one (the X server) ends the
  service at once; any other is restarted, unless it exits more than ``max_restarts`` times in
  ``restart_window_s``, which ends the service too. The reason lands in :attr:`failure`.
* :meth:`Supervisor.stop` sends SIGTERM to every group, SIGKILL after ``stop_timeout_s``, then
  ends and reaps any descendant left over (orphans re-parented to us; see
  :func:`~slicer_cloud.desktop.proctree.become_subreaper`). Afterwards no process remains.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from slicer_cloud.desktop import proctree

log = logging.getLogger(__name__)

_OUTPUT_TAIL_LINES = 30


@dataclass
class ProgramSpec:
    """What to run and how to treat its exit."""

    #: shown to the user, e.g. "X server (Xvnc)"
    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    cwd: Path | None = None
    #: its exit ends the service (nothing works without it)
    essential: bool = False
    #: file descriptors the program inherits (the X server's -displayfd pipe)
    pass_fds: tuple[int, ...] = ()
    #: wrap in the parent-death prefix so it dies with the service even on SIGKILL
    die_with_service: bool = True


@dataclass
class Program:
    spec: ProgramSpec
    process: asyncio.subprocess.Process
    started_at: float
    output: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=_OUTPUT_TAIL_LINES))
    exits: collections.deque[float] = field(default_factory=collections.deque)

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self) -> str:
        return "\n".join(self.output)


class Supervisor:
    """Starts, watches, restarts and stops the processes of one desktop."""

    def __init__(self, *, max_restarts: int = 5, restart_window_s: float = 60.0, stop_timeout_s: float = 5.0):
        self.max_restarts = max_restarts
        self.restart_window_s = restart_window_s
        self.stop_timeout_s = stop_timeout_s
        self.programs: list[Program] = []
        self.failure: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._tasks: set[asyncio.Task] = set()
        self._spawned: set[int] = set()  # every pid we started: asyncio reaps those, not us
        self._stopping = False

    # -- starting --------------------------------------------------------------------------
    async def start(self, spec: ProgramSpec) -> Program:
        program = Program(spec=spec, process=await self._spawn(spec), started_at=time.monotonic())
        self.programs.append(program)
        log.info("Started %s (pid %d): %s", spec.name, program.pid, " ".join(spec.argv))
        self._watch(program)
        return program

    async def _spawn(self, spec: ProgramSpec) -> asyncio.subprocess.Process:
        argv = (proctree.parent_death_prefix() if spec.die_with_service else []) + list(spec.argv)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=spec.env,
                cwd=spec.cwd,
                pass_fds=spec.pass_fds,
                start_new_session=True,
            )
        except OSError as error:
            from slicer_cloud.errors import SlicerCloudError

            raise SlicerCloudError(f"Cannot start {spec.name} ({spec.argv[0]}): {error.strerror}.", status=500) from error
        self._spawned.add(process.pid)
        return process

    def _watch(self, program: Program) -> None:
        for coro in (self._read_output(program), self._wait_exit(program)):
            task = asyncio.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _read_output(self, program: Program) -> None:
        # Read chunks, not lines: a program printing a huge line must never find its pipe full
        # (it would block), so everything is drained and only the line tails are kept.
        stream = program.process.stdout
        assert stream is not None
        pending = b""
        with contextlib.suppress(ConnectionError):
            while chunk := await stream.read(64 * 1024):
                *lines, pending = (pending + chunk).split(b"\n")
                pending = pending[-4096:]
                for raw in lines:
                    self._keep_line(program, raw)
        self._keep_line(program, pending)

    @staticmethod
    def _keep_line(program: Program, raw: bytes) -> None:
        line = raw[-2000:].decode(errors="replace").rstrip()
        if line:
            program.output.append(line)
            log.debug("[%s] %s", program.spec.name, line)

    # -- exits -----------------------------------------------------------------------------
    async def _wait_exit(self, program: Program) -> None:
        code = await program.process.wait()
        if self._stopping:
            return
        reason = _describe_exit(program.spec.name, code)
        if program.spec.essential:
            tail = program.tail()
            self._fail(f"{reason}; the desktop cannot run without it." + (f"\nIts last output:\n{tail}" if tail else ""))
            return
        now = time.monotonic()
        program.exits.append(now)
        while program.exits and now - program.exits[0] > self.restart_window_s:
            program.exits.popleft()
        if len(program.exits) > self.max_restarts:
            tail = program.tail()
            self._fail(
                f"{reason} ({len(program.exits)} times within {self.restart_window_s:.0f} s); giving up."
                + (f"\nIts last output:\n{tail}" if tail else "")
            )
            return
        delay = min(0.5 * len(program.exits), 5.0)
        log.warning("%s; restarting it in %.1f s.", reason, delay)
        await asyncio.sleep(delay)
        if self._stopping:
            return
        try:
            program.process = await self._spawn(program.spec)
        except Exception as error:  # noqa: BLE001 - any failure to restart ends the service with its reason
            self._fail(f"{reason}, and restarting it failed: {error}")
            return
        program.started_at = time.monotonic()
        log.info("Restarted %s (pid %d).", program.spec.name, program.pid)
        self._watch(program)

    def _fail(self, reason: str) -> None:
        log.error("%s", reason)
        if not self.failure.done():
            self.failure.set_result(reason)

    async def reap_orphans_forever(self, interval_s: float = 2.0) -> None:
        """Reap adopted orphans that exited, so they do not linger as zombies."""
        while True:
            await asyncio.sleep(interval_s)
            _reap_unmanaged_children(self._spawned)

    # -- stopping --------------------------------------------------------------------------
    async def stop(self, *, sweep_descendants: bool = True) -> None:
        """End every program (reverse start order), then anything left below this process."""
        self._stopping = True
        for program in reversed(self.programs):
            _signal_group(program.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        for program in self.programs:
            remaining = max(0.05, deadline - time.monotonic())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(program.process.wait(), remaining)
        for program in self.programs:
            # the group may outlive its leader: signal it even when the leader has exited
            _signal_group(program.pid, signal.SIGKILL)
            if program.process.returncode is None:
                await program.process.wait()
        if sweep_descendants:
            await _end_descendants(self.stop_timeout_s)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _describe_exit(name: str, code: int) -> str:
    if code < 0:
        try:
            return f"{name} was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"{name} was killed by signal {-code}"
    return f"{name} exited with code {code}"


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _reap_unmanaged_children(managed: set[int]) -> None:
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in managed:
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] == "Z" and int(fields[1]) == me:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(int(entry), os.WNOHANG)


async def _end_descendants(timeout_s: float) -> None:
    """SIGTERM, then SIGKILL, whatever still descends from this process, and reap it."""
    left = proctree.descendants(os.getpid())
    if not left:
        return
    log.info("Ending %d leftover process(es): %s", len(left), ", ".join(f"{p.name}[{p.pid}]" for p in left))
    for info in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap_unmanaged_children(set())
        if not proctree.descendants(os.getpid()):
            return
        await asyncio.sleep(0.05)
    for info in proctree.descendants(os.getpid()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGKILL)
    await asyncio.sleep(0.05)
    _reap_unmanaged_children(set())
