"""One logging set-up for every slicer-cloud process: the CLI's services, the viewer's session
processes, the services jupyter-server-proxy starts, and job workers.

At the default level (``info``) a terminal shows what a user acts on: the serving URL (printed
by each service), sessions started and ended, files opened, and warnings and errors with their
reason. The libraries underneath (trame's template compiler, wslink, aiohttp, uvicorn, Dask,
Jupyter) log their own progress at INFO; they speak only from WARNING up unless the level is
``debug``. The level comes from ``--log-level`` or the setting ``SLICER_CLOUD_LOG_LEVEL``; the
CLI writes an explicit ``--log-level`` into that variable so child processes follow it.
"""

from __future__ import annotations

import logging
import os
import sys
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from slicer_cloud.errors import SlicerCloudError

LOG_LEVEL_ENV = "SLICER_CLOUD_LOG_LEVEL"
LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%H:%M:%S"

#: Loggers of libraries whose INFO lines are their own progress, not something a user acts on.
#: trame's template compiler logs every ``has(... => ...)`` token here.
CHATTY_LOGGERS = (
    "trame",
    "trame_server",
    "trame_client",
    "trame_rca",
    "trame_vuetify",
    "trame_slicer",
    "wslink",
    "aiohttp",
    "uvicorn",
    "distributed",
    "dask",
    "asyncio",
    "PIL",
    "pylibjpeg",
    "pydicom",
    "httpx",
    "urllib3",
    "tornado",
    "jupyter_server_proxy",
    "simpervisor",
    "traitlets",
)


def _normalize(level: str) -> str:
    normalized = level.strip().lower()
    normalized = "warning" if normalized == "warn" else normalized
    if normalized not in LEVELS:
        raise ValueError(f"{level!r} is not a log level: use one of {', '.join(LEVELS)}")
    return normalized


class LogSettings(BaseSettings):
    """How much every slicer-cloud process logs."""

    model_config = SettingsConfigDict(env_prefix="SLICER_CLOUD_", extra="ignore")

    log_level: str = Field(default="info", description="debug, info, warning or error (any case).")

    @field_validator("log_level")
    @classmethod
    def _check(cls, value: str) -> str:
        return _normalize(value)


def resolve_level(level: str | None = None) -> str:
    """``level`` if given, else the setting; a clear error for anything else."""
    if level is None:
        try:
            return LogSettings().log_level
        except ValidationError:
            raise SlicerCloudError(
                f"{LOG_LEVEL_ENV}={os.environ.get(LOG_LEVEL_ENV)!r} is not a log level: use one of {', '.join(LEVELS)}."
            ) from None
    try:
        return _normalize(level)
    except ValueError as error:
        raise SlicerCloudError(f"--log-level {error}.") from None


def use_level(level: str | None) -> None:
    """Make ``level`` the setting of this process and of every process it starts."""
    if level is not None:
        os.environ[LOG_LEVEL_ENV] = resolve_level(level)


def setup_logging(level: str | None = None, *, tag: str = "") -> str:
    """Send every log record of this process to stderr in the one format, at ``level`` (default:
    the setting). ``tag`` names the process in each line (a viewer session's id). Returns the level
    used. Safe to call again: it replaces the handler it installed before."""
    name = resolve_level(level)
    numeric = getattr(logging, name.upper())
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    prefix = f"{tag} " if tag else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s {prefix}%(levelname)s %(name)s: %(message)s", DATE_FORMAT))
    root.addHandler(handler)
    root.setLevel(numeric)
    for chatty in CHATTY_LOGGERS:
        logging.getLogger(chatty).setLevel(logging.DEBUG if name == "debug" else max(numeric, logging.WARNING))
    return name


def jupyter_log_level(level: str | None = None) -> str:
    """The traitlets ``log_level`` of a Jupyter Server or JupyterHub at our level: their INFO
    lines are their own progress, shown from ``debug`` only."""
    name = resolve_level(level)
    return {"debug": "DEBUG", "info": "WARN", "warning": "WARN", "error": "ERROR"}[name]
