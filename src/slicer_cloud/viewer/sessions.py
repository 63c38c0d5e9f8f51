"""Viewer session processes: started ahead, handed to browser tabs, ended when idle.

Each browser tab gets its own process (its own Slicer scene, layout and view sizes). That gives
isolation (two tabs never drive each other; a crash ends one session only), keeps rendering off
the gateway's event loop (a slow 3D frame never delays another user or an HTTP request) and
parses untrusted files outside the process that serves everyone. Starting Python, VTK and
slicer-core takes seconds, so ``spare_sessions`` processes are kept started, with the default
volume already loaded, and a new tab gets one at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from slicer_cloud.config import Limits, ViewerSettings
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.viewer.session import READY_MARKER
from slicer_cloud.web.serving import free_port

log = logging.getLogger("slicer_cloud.viewer")

MAX_FAILED_STARTS = 3
#: at capacity, a session with no browser connected for this long may be ended for a new tab
#: (long enough to survive a page reload).
EVICTABLE_AFTER_S = 15.0


@dataclass(frozen=True)
class OpenItem:
    """A path to open: given by the operator on the command line (trusted, anywhere) or by a
    browser (``?open=``), then relative to the data root and checked by the session."""

    path: str
    trusted: bool
    label: str


@dataclass(frozen=True)
class OpenRequest:
    """What a session opens, in order: typically a volume, then segmentations over it."""

    items: tuple[OpenItem, ...]

    def command(self) -> dict:
        return {"cmd": "open", "items": [vars(item) for item in self.items]}


@dataclass(eq=False)
class Session:
    id: str
    port: int
    secret: str
    process: asyncio.subprocess.Process
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    assigned: bool = False
    connections: int = 0
    last_active: float = field(default_factory=time.monotonic)
    preloaded: OpenRequest | None = None
    exit_reason: str = ""

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def send(self, command: dict) -> None:
        if not self.alive or self.process.stdin is None:
            raise SlicerCloudError("This viewer session has ended.", status=410)
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        await self.process.stdin.drain()


class SessionManager:
    """Owns every session process of one viewer service."""

    def __init__(
        self,
        settings: ViewerSettings,
        limits: Limits,
        *,
        gateway_base: str,
        default_open: OpenRequest | None,
    ):
        self.settings = settings
        self.limits = limits
        self.gateway_base = gateway_base
        self.default_open = default_open
        self.sessions: dict[str, Session] = {}
        self._spares: list[Session] = []
        self._key_dir = Path(tempfile.mkdtemp(prefix="slicer-cloud-keys-"))
        os.chmod(self._key_dir, 0o700)
        self._tasks: set[asyncio.Task] = set()
        self._closing = False
        self._spare_lock = asyncio.Lock()
        #: slots held by launches in flight (a process not yet in ``sessions``) and by tabs waiting
        #: for an evicted session to end. Counted with ``sessions`` so the cap holds even when many
        #: tabs arrive together: a slot is taken before the first await, never after.
        self._reserved = 0
        #: sessions that died before becoming ready, in a row: past a few, stop respawning.
        self._failed_starts = 0
        self.broken_reason = ""

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await self._top_up_spares()
        self._spawn_task(self._reap_loop())

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(self._stop(s) for s in list(self.sessions.values())), return_exceptions=True)
        with contextlib.suppress(OSError):
            for key in self._key_dir.iterdir():
                key.unlink()
            self._key_dir.rmdir()

    def _spawn_task(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- sessions --------------------------------------------------------------------------
    async def _launch(self) -> Session:
        # lowercase: the trame client lowercases the websocket URL it is given
        session_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(24)
        key_file = self._key_dir / f"{session_id}.key"
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret)
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "slicer_cloud.viewer.session",
            "--port",
            str(port),
            "--auth-key-file",
            str(key_file),
            "--gateway-base",
            self.gateway_base,
            "--settings",
            self.settings.model_dump_json(exclude={"token"}),  # a command line is readable by every local user
            "--limits",
            self.limits.model_dump_json(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,  # session logs go to the service's own stderr
        )
        session = Session(id=session_id, port=port, secret=secret, process=process)
        self.sessions[session_id] = session
        self._spawn_task(self._watch(session))
        log.debug("session %s starting (pid %d)", session_id, process.pid)
        return session

    async def _watch(self, session: Session) -> None:
        assert session.process.stdout is not None
        async for raw in session.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line == READY_MARKER:
                session.ready.set()
            elif line:
                log.debug("session %s: %s", session.id, line)
        code = await session.process.wait()
        session.exit_reason = session.exit_reason or f"exited with code {code}"
        if not session.ready.is_set() and not self._closing:
            self._failed_starts += 1
            if self._failed_starts >= MAX_FAILED_STARTS:
                self.broken_reason = (
                    f"viewer sessions fail to start ({session.exit_reason}); see the log above for the reason, or run `slicer-cloud doctor`"
                )
                log.error("%s: not starting more", self.broken_reason)
        else:
            self._failed_starts = 0
        session.ready.set()  # wake anyone waiting: they will see it is dead
        self._forget(session)
        if not self._closing:
            log.log(logging.INFO if code in (0, -signal.SIGTERM) else logging.WARNING, "session %s %s", session.id, session.exit_reason)
            self._spawn_task(self._top_up_spares())

    def _forget(self, session: Session) -> None:
        self.sessions.pop(session.id, None)
        if session in self._spares:
            self._spares.remove(session)
        with contextlib.suppress(OSError):
            (self._key_dir / f"{session.id}.key").unlink()

    async def _top_up_spares(self) -> None:
        async with self._spare_lock:
            while not self._closing and not self.broken_reason and len(self._spares) < self.settings.spare_sessions and self._room_for_more():
                spare = await self._launch_reserved()
                self._spares.append(spare)
                self._spawn_task(self._preload(spare))

    async def _launch_reserved(self) -> Session:
        """Launch a session in a slot taken now, before the launch awaits anything."""
        self._reserved += 1
        try:
            return await self._launch()
        finally:
            self._reserved -= 1

    async def _preload(self, spare: Session) -> None:
        if self.default_open is None:
            return
        with contextlib.suppress(asyncio.TimeoutError, SlicerCloudError):
            await asyncio.wait_for(spare.ready.wait(), self.settings.session_start_timeout_s)
            if spare.alive:
                await spare.send(self.default_open.command())
                spare.preloaded = self.default_open

    def slots_taken(self) -> int:
        """Session processes that exist or are being started: tabs', spares' and ending ones'."""
        return len(self.sessions) + self._reserved

    def _room_for_more(self) -> bool:
        return self.slots_taken() < self.settings.max_sessions

    def assigned_count(self) -> int:
        return sum(1 for s in self.sessions.values() if s.assigned)

    def _busy(self) -> SlicerCloudError:
        return SlicerCloudError(
            f"All viewer sessions are in use ({self.settings.max_sessions} of {self.settings.max_sessions}); "
            "close a tab or try again in a moment.",
            status=503,
            retry_after_s=self.settings.busy_retry_after_s,
        )

    async def acquire(self, open_request: OpenRequest | None) -> Session:
        """A ready session for a new tab, opening ``open_request`` (or the default).

        The slot is claimed synchronously (a spare, a free slot, or an idle session's slot) before
        the first await, so a burst of tabs never starts more than ``max_sessions`` processes; the
        ones over the cap get a 503 with ``Retry-After`` at once.
        """
        if self.broken_reason:
            raise SlicerCloudError(f"The viewer cannot start: {self.broken_reason}.", status=500)
        session = None
        while self._spares and session is None:
            candidate = self._spares.pop(0)
            if candidate.alive:
                session = candidate
        victim = None
        if session is None:
            if not self._room_for_more():
                victim = self._idle_victim()
                if victim is None:
                    raise self._busy()
                victim.assigned = False  # its slot is ours from now on; its tab is told it ended
            self._reserved += 1
        else:
            session.assigned = True
        try:
            if session is None:
                try:
                    if victim is not None:
                        log.info("at capacity: ending session %s, idle for %.0f s", victim.id, time.monotonic() - victim.last_active)
                        await self._stop(victim, reason="ended to make room for a new tab")
                    session = await self._launch()
                finally:
                    self._reserved -= 1
                session.assigned = True
            await asyncio.wait_for(session.ready.wait(), self.settings.session_start_timeout_s)
        except asyncio.TimeoutError:
            await self._stop(session)
            raise SlicerCloudError(
                "The viewer session did not start in time; try again.",
                status=503,
                retry_after_s=self.settings.busy_retry_after_s,
            ) from None
        finally:
            # Only now: a spare starting at the same time would slow the session the user waits for.
            self._spawn_task(self._top_up_spares())
        if not session.alive:
            raise SlicerCloudError(f"The viewer session failed to start ({session.exit_reason}).", status=500)
        session.last_active = time.monotonic()  # idle time counts from when the page can connect
        wanted = open_request or self.default_open
        if wanted is not None and wanted != session.preloaded:
            await session.send(wanted.command())
        log.info("session %s started for a new tab (pid %d)", session.id, session.process.pid)
        return session

    def get(self, session_id: str) -> Session | None:
        session = self.sessions.get(session_id)
        if session is None or not session.assigned or not session.alive:
            return None
        return session

    async def _stop(self, session: Session, reason: str = "stopped") -> None:
        session.exit_reason = session.exit_reason or reason
        if session.alive:
            with contextlib.suppress(ProcessLookupError):
                session.process.terminate()
            try:
                await asyncio.wait_for(session.process.wait(), 5)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    session.process.kill()
                await session.process.wait()
        self._forget(session)

    def _idle_victim(self) -> Session | None:
        """At capacity, the session whose browser left longest ago (a closed tab), if any."""
        now = time.monotonic()
        idle = [
            s
            for s in self.sessions.values()
            if s.assigned and s.ready.is_set() and s.connections == 0 and now - s.last_active > EVICTABLE_AFTER_S
        ]
        return min(idle, key=lambda s: s.last_active) if idle else None

    async def _reap_loop(self) -> None:
        interval = min(30.0, max(0.5, self.settings.session_idle_timeout_s / 4))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for session in list(self.sessions.values()):
                idle = now - session.last_active
                if (
                    session.assigned
                    and session.ready.is_set()
                    and session.connections == 0
                    and idle > self.settings.session_idle_timeout_s
                ):
                    log.info("session %s idle for %.0f s: ending it", session.id, idle)
                    await self._stop(session, reason="ended after being idle")

    # -- connection accounting (the websocket proxy calls these) ---------------------------
    def connected(self, session: Session) -> None:
        session.connections += 1
        session.last_active = time.monotonic()

    def disconnected(self, session: Session) -> None:
        session.connections = max(0, session.connections - 1)
        session.last_active = time.monotonic()
