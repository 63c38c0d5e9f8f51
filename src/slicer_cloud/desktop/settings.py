"""Settings of the remote desktop (``slicer-cloud desktop``); environment prefix ``SLICER_CLOUD_``."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator

from slicer_cloud.config import ServiceSettings

_GEOMETRY = re.compile(r"^(\d{3,5})x(\d{3,5})$")


def parse_geometry(text: str) -> tuple[int, int]:
    """``'1600x900'`` -> ``(1600, 900)``; refuses sizes an X server cannot make."""
    from slicer_cloud.errors import SlicerCloudError

    match = _GEOMETRY.match(text.strip())
    if not match:
        raise SlicerCloudError(f"--geometry must look like 1600x900, not {text!r}.")
    width, height = int(match.group(1)), int(match.group(2))
    if not (320 <= width <= 8192 and 240 <= height <= 8192):
        raise SlicerCloudError(f"--geometry {text} is outside 320x240 .. 8192x8192.")
    return width, height


class DesktopSettings(ServiceSettings):
    """Where the desktop listens, what it runs and the limits of its supervisor."""

    port: int = Field(default=6080, ge=0, le=65535)
    geometry: str = Field(default="1600x900", description="Initial screen size; the page then resizes it.")
    depth: int = Field(default=24, description="Colour depth of the X screen.")
    desktop_name: str = Field(default="slicer-cloud desktop", description="Name shown by VNC clients.")
    novnc_dir: Path = Field(
        default=Path("/usr/share/novnc"), description="The noVNC client library (Debian package novnc)."
    )
    novnc_unpinned: bool = Field(
        default=False,
        description="Serve a noVNC library whose files differ from the pinned version (untested).",
    )
    slicer_download_url: str = Field(
        default="https://download.slicer.org",
        description="Base URL of Slicer's download server (its /find endpoint describes each release).",
    )
    download_connect_timeout_s: float = Field(default=5.0, gt=0, description="Give up connecting after this.")
    download_read_timeout_s: float = Field(default=60.0, gt=0)
    x_start_timeout_s: float = Field(default=15.0, gt=0, description="Longest wait for the X server.")
    allow_tcp_vnc: bool = Field(
        default=False,
        description="With an Xvnc older than TigerVNC 1.10 (no unix socket): serve VNC on a loopback port "
        "behind a VNC password only this service knows, instead of refusing to start.",
    )
    transport: str = Field(
        default="novnc",
        description="How the screen reaches the browser: novnc (VNC Tight through our bridge, the default) "
        "or selkies (H.264/JPEG over a websocket, decoded with the browser's WebCodecs).",
    )
    max_restarts: int = Field(
        default=5, ge=0, description="A program that exits more often than this within restart_window_s ends the service."
    )
    restart_window_s: float = Field(default=60.0, gt=0)
    stop_timeout_s: float = Field(default=5.0, gt=0, description="Grace time between SIGTERM and SIGKILL.")

    @field_validator("transport")
    @classmethod
    def _known_transport(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("novnc", "selkies"):
            raise ValueError(f"transport must be novnc or selkies, not {value!r}")
        return value

    @field_validator("geometry")
    @classmethod
    def _valid_geometry(cls, value: str) -> str:
        from slicer_cloud.errors import SlicerCloudError

        try:
            parse_geometry(value)
        except SlicerCloudError as error:
            raise ValueError(error.message) from None
        return value
