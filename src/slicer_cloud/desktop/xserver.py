"""TigerVNC's Xvnc: an X server whose screen is served over VNC, here on a unix socket only.

Safety choices:

* VNC listens on a unix socket in a private (0700) folder, mode 0600, and on no TCP port at all
  (``-rfbport -1``); the only way in from the network is our token-checked websocket bridge.
  An Xvnc too old for unix sockets is refused, with the reason and the fix, unless
  ``--allow-tcp-vnc``: then VNC listens on a loopback port, behind a random VNC password that
  only this process knows (the bridge authenticates; see :mod:`slicer_cloud.desktop.vnc_auth`).
* X clients need the MIT cookie written to the private ``Xauthority`` file; X itself listens on
  no TCP port (``-nolisten tcp``).
* The X server picks a free display number itself (``-displayfd``), under its own lock files,
  so several desktops on one machine never collide.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from slicer_cloud.desktop import vnc_auth
from slicer_cloud.desktop.supervisor import Program, ProgramSpec, Supervisor
from slicer_cloud.doctor import HINT
from slicer_cloud.errors import SlicerCloudError

log = logging.getLogger(__name__)

_FAMILY_WILD = 0xFFFF


@dataclass
class XServer:
    display: int
    xauthority: Path
    program: Program
    #: where VNC clients connect: a unix socket, or (fallback) a loopback TCP port
    vnc_socket: Path | None = None
    vnc_port: int | None = None
    #: the VNC password of a TCP port (never shown to the browser); None on a unix socket
    vnc_password: bytes | None = field(default=None, repr=False)

    @property
    def display_name(self) -> str:
        return f":{self.display}"

    def client_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment an X program on this desktop needs."""
        env = dict(os.environ if base is None else base)
        env["DISPLAY"] = self.display_name
        env["XAUTHORITY"] = str(self.xauthority)
        return env

    @property
    def bridge_answers_security(self) -> bool:
        """True when :meth:`open_vnc` returns a connection already past VNC's security handshake,
        so the bridge plays the server's side of it for the browser."""
        return self.vnc_password is not None

    async def open_vnc(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.vnc_socket is not None:
            return await asyncio.open_unix_connection(str(self.vnc_socket))
        reader, writer = await asyncio.open_connection("127.0.0.1", self.vnc_port)
        if self.vnc_password is not None:
            try:
                await asyncio.wait_for(vnc_auth.authenticate(reader, writer, self.vnc_password), 10)
            except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.TimeoutError) as error:
                writer.close()
                raise ConnectionError(f"VNC authentication failed: {error}") from error
        return reader, writer


def write_xauthority(path: Path) -> bytes:
    """Write an Xauthority file with one random MIT-MAGIC-COOKIE-1 valid for any display of this
    host (family 'wild', empty display number: the display is not known before Xvnc picks it)."""

    def counted(data: bytes) -> bytes:
        return struct.pack(">H", len(data)) + data

    cookie = secrets.token_bytes(16)
    record = struct.pack(">H", _FAMILY_WILD) + counted(b"") + counted(b"") + counted(b"MIT-MAGIC-COOKIE-1") + counted(cookie)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(record)
    return cookie


def find_xvnc() -> str:
    found = shutil.which("Xvnc")
    if not found:
        raise SlicerCloudError(
            "TigerVNC's X server (Xvnc) is not installed. Debian/Ubuntu: apt-get install "
            f"tigervnc-standalone-server openbox novnc (or run scripts/bootstrap.sh). {HINT}",
            status=500,
        )
    return found


@functools.lru_cache(maxsize=4)
def supports_unix_socket(xvnc: str) -> bool:
    """TigerVNC 1.10 and later can serve VNC on a unix socket (``-rfbunixpath``)."""
    try:
        result = subprocess.run([xvnc, "-help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "rfbunixpath" in (result.stdout + result.stderr)


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def start_x_server(
    supervisor: Supervisor,
    runtime_dir: Path,
    *,
    width: int,
    height: int,
    depth: int = 24,
    desktop_name: str = "slicer-cloud desktop",
    timeout_s: float = 15.0,
    allow_tcp_vnc: bool = False,
) -> XServer:
    """Start Xvnc under ``supervisor``; return once X clients and VNC clients can connect."""
    xvnc = find_xvnc()
    xauthority = runtime_dir / "Xauthority"
    write_xauthority(xauthority)
    args = [
        xvnc,
        "-geometry", f"{width}x{height}",
        "-depth", str(depth),
        "-desktop", desktop_name,
        "-auth", str(xauthority),
        "-nolisten", "tcp",
        "-AlwaysShared",
        "-AcceptSetDesktopSize=1",
        "-dpi", "96",
    ]  # fmt: skip
    vnc_socket: Path | None = None
    vnc_port: int | None = None
    vnc_password: bytes | None = None
    if supports_unix_socket(xvnc):
        vnc_socket = runtime_dir / "vnc.sock"
        # the socket's folder and mode are the lock: no VNC password needed
        args += ["-SecurityTypes", "None", "-rfbunixpath", str(vnc_socket), "-rfbunixmode", "384", "-rfbport", "-1"]
    elif not allow_tcp_vnc:
        raise SlicerCloudError(
            f"This Xvnc ({xvnc}) is older than TigerVNC 1.10 and cannot serve VNC on a private unix "
            "socket; on a TCP port every account on this machine could connect to the desktop. Upgrade "
            "TigerVNC to 1.10 or later (Debian 11+, Ubuntu 20.04+: tigervnc-standalone-server), or start "
            "with --allow-tcp-vnc to use a loopback port behind a VNC password that only this service knows.",
            status=500,
        )
    else:
        vnc_port = _free_loopback_port()
        vnc_password = vnc_auth.new_password()
        password_file = runtime_dir / "vncpasswd"  # in the private folder, mode 0600
        vnc_auth.write_password_file(password_file, vnc_password)
        log.warning(
            "This Xvnc cannot listen on a unix socket; with --allow-tcp-vnc, VNC listens on 127.0.0.1:%d "
            "behind a VNC password only this service knows. Upgrade TigerVNC to 1.10 or later.",
            vnc_port,
        )
        # Failed attempts by others must not lock the bridge out (Xvnc blacklists by address, and all
        # of them come from 127.0.0.1); guessing a random 8-character password is hopeless anyway.
        args += ["-SecurityTypes", "VncAuth", "-PasswordFile", str(password_file), "-BlacklistThreshold", "1000000",
                 "-rfbport", str(vnc_port), "-interface", "127.0.0.1", "-localhost"]  # fmt: skip

    read_fd, write_fd = os.pipe()
    try:
        program = await supervisor.start(
            ProgramSpec(
                name="X server (Xvnc)",
                argv=args[:1] + ["-displayfd", str(write_fd)] + args[1:],
                essential=True,
                pass_fds=(write_fd,),
                cwd=runtime_dir,
            )
        )
    finally:
        os.close(write_fd)
    try:
        display = await _read_display(read_fd, program, timeout_s)
    finally:
        os.close(read_fd)
    server = XServer(
        display=display, xauthority=xauthority, program=program, vnc_socket=vnc_socket, vnc_port=vnc_port,
        vnc_password=vnc_password,
    )  # fmt: skip
    await _wait_vnc_ready(server, program, timeout_s)
    log.info("X server ready on display %s (VNC on %s).", server.display_name, vnc_socket or f"127.0.0.1:{vnc_port}")
    return server


async def _read_display(read_fd: int, program: Program, timeout_s: float) -> int:
    """Xvnc writes its display number to the -displayfd pipe once it accepts X clients."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[bytes] = loop.create_future()
    received = bytearray()

    def on_readable() -> None:
        # The number and its newline come in two writes; closing the pipe between them would
        # make Xvnc fail ("Cannot write display number"), so wait for the newline or EOF.
        chunk = os.read(read_fd, 64)
        received.extend(chunk)
        if (not chunk or b"\n" in received) and not ready.done():
            ready.set_result(bytes(received))

    loop.add_reader(read_fd, on_readable)
    exited = asyncio.ensure_future(program.process.wait())
    try:
        done, _ = await asyncio.wait({ready, exited}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        loop.remove_reader(read_fd)
    if ready.done() and ready.result().strip():
        exited.cancel()
        return int(ready.result().decode().strip())
    exited.cancel()
    await asyncio.sleep(0.1)  # let the output reader catch the last lines
    why = "exited" if program.process.returncode is not None else f"did not start within {timeout_s:.0f} s"
    raise SlicerCloudError(f"The X server (Xvnc) {why}.", status=500, detail=program.tail())


async def _wait_vnc_ready(server: XServer, program: Program, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if program.process.returncode is not None:
            raise SlicerCloudError("The X server (Xvnc) exited while starting.", status=500, detail=program.tail())
        try:
            _reader, writer = await server.open_vnc()
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise SlicerCloudError(f"The VNC server did not accept connections within {timeout_s:.0f} s.", status=500)
