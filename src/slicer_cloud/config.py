"""Typed settings. Every limit is a setting with a safe default.

Each setting can come from the environment with the prefix ``SLICER_CLOUD_`` (for example
``SLICER_CLOUD_MAX_VOXELS=200000000``); command-line options override the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_cache_dir() -> Path:
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "slicer-cloud"


class Limits(BaseSettings):
    """Limits applied to every untrusted file, whichever service reads it."""

    model_config = SettingsConfigDict(env_prefix="SLICER_CLOUD_", extra="ignore")

    max_voxels: int = Field(
        default=1024**3 // 2,
        gt=0,
        description="Largest image (voxels x components) a header may declare; checked before any allocation.",
    )
    max_upload_bytes: int = Field(default=4 * 1024**3, gt=0, description="Largest single upload, in bytes.")
    max_upload_parts: int = Field(
        default=16, gt=0, description="Most parts a multipart upload may have (the file and a few fields)."
    )
    max_decompressed_bytes: int = Field(
        default=4 * 1024**3,
        gt=0,
        description="Most bytes a compressed file may expand to (defends against gzip bombs).",
    )
    max_dicom_files: int = Field(default=5000, gt=0, description="Most files read from one DICOM folder.")


class ServiceSettings(BaseSettings):
    """What every network service shares: where it listens, its token and its data."""

    model_config = SettingsConfigDict(env_prefix="SLICER_CLOUD_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    token: str | None = Field(
        default=None,
        description="Access token. None: one is generated. Empty: no token (only allowed on loopback).",
    )
    session_cookie_ttl_s: float = Field(
        default=3600.0,
        gt=0,
        le=7 * 24 * 3600,
        description="Life of a browser session (the cookie a ?token= link sets), renewed while it is used.",
    )
    base_url: str = "/"
    data_dir: Path = Field(default_factory=Path.cwd)
    cache_dir: Path = Field(default_factory=default_cache_dir)


class ViewerSettings(ServiceSettings):
    """Settings of the web viewer (``slicer-cloud view``)."""

    max_sessions: int = Field(
        default=8, gt=0, description="Most viewer session processes at once (spares started ahead included)."
    )
    max_ws_message_bytes: int = Field(
        default=16 * 1024**2,
        gt=0,
        description="Largest websocket message a browser may send to its session; a larger one closes the socket (1009).",
    )
    upload_staging_max_age_s: float = Field(
        default=3600.0,
        gt=0,
        description="An upload staged this long and never opened (its tab closed) is removed; swept at start and periodically.",
    )
    busy_retry_after_s: int = Field(
        default=10, gt=0, description="When every session is in use, the busy page tries again after this long."
    )
    spare_sessions: int = Field(
        default=1, ge=0, le=4, description="Session processes kept started ahead, so a new tab shows images fast."
    )
    session_idle_timeout_s: float = Field(
        default=600.0, gt=0, description="A session with no browser connected for this long is ended."
    )
    session_start_timeout_s: float = Field(default=60.0, gt=0)
    jpeg_quality_interactive: int = Field(default=50, ge=1, le=100)
    jpeg_quality_still: int = Field(default=90, ge=1, le=100)
    local_3d: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="3D volume rendering in the browser (vtk.js): auto = when the browser has WebGL2 and this server "
        "renders without a GPU; the user can switch in the page either way.",
    )


class SurveySettings(BaseSettings):
    """Settings of the forum survey (``slicer-cloud survey``): how politely it reads a live forum."""

    model_config = SettingsConfigDict(env_prefix="SLICER_CLOUD_SURVEY_", extra="ignore")

    forum_url: str = Field(default="https://discourse.slicer.org", description="The Discourse forum surveyed and linked to.")
    request_interval_s: float = Field(default=0.5, ge=0, description="Least time between two requests to the forum.")
    max_retries: int = Field(default=6, ge=0, description="Retries of one request after 429, 5xx or a network error.")
    max_retry_wait_s: float = Field(default=300.0, gt=0, description="Longest wait before one retry (Retry-After included).")
    timeout_s: float = Field(default=30.0, gt=0, description="Timeout of one HTTP request.")
    cache_dir: Path = Field(
        default_factory=lambda: default_cache_dir() / "survey", description="Where fetched topics are kept between runs."
    )
