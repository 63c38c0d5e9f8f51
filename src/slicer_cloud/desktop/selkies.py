"""The selkies transport: H.264 (or JPEG) frames of the X screen over a websocket, decoded by the
browser's WebCodecs, instead of VNC's Tight encoding.

selkies (PyPI, 2.x) captures the X display itself (pixelflux: XShm capture of the Xvnc screen,
software x264/JPEG encoders bundled in its wheel, no GPU needed) and injects input through XTEST;
its web client ships inside the wheel. We run it as one more supervised program on the same Xvnc
display, listening on a unix socket in the desktop's private 0700 runtime folder (no TCP port),
with its input-interposer sockets kept in that folder too (``XDG_RUNTIME_DIR``), and reach it only
through :class:`~slicer_cloud.desktop.unix_proxy.UnixProxy` behind our token middleware.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from pathlib import Path

from slicer_cloud.desktop.supervisor import Program, ProgramSpec, Supervisor
from slicer_cloud.errors import SlicerCloudError

#: the URL folder under the desktop's base URL where the selkies client and websocket live
PREFIX = "selkies"
#: selkies' own prefix on its socket (its ``--subfolder``), so its relative URLs line up with ours
UPSTREAM_PREFIX = "/" + PREFIX

TRANSPORTS = ("novnc", "selkies")


def check_installed() -> None:
    """Refuse early, with the fix, when the selkies package is absent."""
    if importlib.util.find_spec("selkies") is None or importlib.util.find_spec("pixelflux") is None:
        raise SlicerCloudError(
            "--transport selkies needs the selkies package (pip install 'selkies>=2.1,<3'); "
            "or use the default --transport novnc."
        )


def selkies_argv(socket_path: Path, *, framerate: int = 60) -> list[str]:
    """The command line: websockets mode on a unix socket, everything but the screen and input off."""
    off = ("audio-enabled", "microphone-enabled", "gamepad-enabled", "webcam-enabled", "printing-enabled",
           "enable-basic-auth", "enable-https", "command-enabled", "enable-sharing", "enable-collab",
           "ui-sidebar-show-files", "ui-sidebar-show-apps")  # fmt: skip
    argv = [sys.executable, "-m", "selkies", "--mode", "websockets", "--unix-socket", str(socket_path),
            "--subfolder", UPSTREAM_PREFIX, "--framerate", str(framerate), "--file-transfers", "none"]  # fmt: skip
    argv += [f"--{name}=false" for name in off]
    return argv


def selkies_env(client_env: dict[str, str], runtime_dir: Path) -> dict[str, str]:
    env = dict(client_env)
    # Its interposer sockets and temporary files go into our private folder, not a shared /tmp.
    env["XDG_RUNTIME_DIR"] = str(runtime_dir)
    env["TMPDIR"] = str(runtime_dir)
    return env


async def start_selkies(
    supervisor: Supervisor, client_env: dict[str, str], runtime_dir: Path, *, timeout_s: float = 60.0
) -> tuple[Program, Path]:
    """Start selkies on the desktop's display and wait until its socket answers."""
    check_installed()
    socket_path = runtime_dir / "selkies.sock"
    program = await supervisor.start(
        ProgramSpec(
            name="stream server (selkies)",
            argv=selkies_argv(socket_path),
            env=selkies_env(client_env, runtime_dir),
            cwd=runtime_dir,
            essential=True,
        )
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if program.process.returncode is not None:
            raise SlicerCloudError("The selkies stream server exited while starting; see the log above.", status=500)
        if socket_path.exists():
            try:
                _reader, writer = await asyncio.open_unix_connection(str(socket_path))
                writer.close()
                return program, socket_path
            except OSError:
                pass
        await asyncio.sleep(0.2)
    raise SlicerCloudError(f"The selkies stream server did not answer within {timeout_s:.0f} s.", status=500)
