"""Who may talk to the Dask cluster that runs our jobs: the one place Dask's security is built.

A Dask scheduler runs any function a connected client sends, as the account that started it.
Without TLS, anyone on the machine (another account, another hub user) who finds its port can
connect a ``distributed.Client`` and run code as us. So:

* a cluster we start ourselves (a ``LocalCluster``, or one an HPC engine starts) uses mutual TLS
  with credentials made for this run only (``Security.temporary()``): a key and certificate that
  exist in this process's memory and are handed to its worker processes, nowhere on disk;
* an external scheduler is reached with the CA, certificate and key files named in the typed
  settings ``SLICER_CLOUD_DASK_TLS_CA_FILE``, ``..._CERT_FILE`` and ``..._KEY_FILE``; without
  them a plain ``tcp://`` scheduler is used as it is, with a warning (it is then only as safe as
  the network that reaches it).

Engines call :func:`dask_security`; nothing else builds a ``Security``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from slicer_cloud.errors import SlicerCloudError

if TYPE_CHECKING:
    from distributed.security import Security

log = logging.getLogger(__name__)


class DaskTlsSettings(BaseSettings):
    """TLS files for an external Dask scheduler (PEM). All three or none."""

    model_config = SettingsConfigDict(env_prefix="SLICER_CLOUD_DASK_TLS_", extra="ignore")

    ca_file: Path | None = Field(default=None, description="CA that signed the scheduler's and workers' certificates.")
    cert_file: Path | None = Field(default=None, description="This client's certificate, signed by that CA.")
    key_file: Path | None = Field(default=None, description="This client's private key.")

    @property
    def configured(self) -> bool:
        return any((self.ca_file, self.cert_file, self.key_file))


def dask_security(*, new_cluster: bool, scheduler: str | None = None, tls: DaskTlsSettings | None = None) -> Security | None:
    """The ``Security`` for a cluster we start (``new_cluster=True``) or for joining ``scheduler``.

    Returns None only when joining an external scheduler with no TLS settings (plain TCP).
    Raises :class:`SlicerCloudError` for incomplete or unreadable TLS settings.
    """
    from distributed.security import Security

    tls = tls if tls is not None else _read_settings()
    if tls.configured:
        return _from_files(tls)
    if new_cluster:
        # Our floor (distributed 2024.4) always has it; it needs the cryptography package.
        return Security.temporary()
    if scheduler and scheduler.startswith("tls://"):
        raise SlicerCloudError(
            f"The Dask scheduler {scheduler} uses TLS: set SLICER_CLOUD_DASK_TLS_CA_FILE, "
            "SLICER_CLOUD_DASK_TLS_CERT_FILE and SLICER_CLOUD_DASK_TLS_KEY_FILE to its CA and to a client "
            "certificate and key.",
            status=500,
        )
    log.warning(
        "The Dask scheduler %s is reached without TLS: anyone who can reach it can run code on its workers. "
        "Use a tls:// scheduler and the SLICER_CLOUD_DASK_TLS_* settings.",
        scheduler,
    )
    return None


def _read_settings() -> DaskTlsSettings:
    try:
        return DaskTlsSettings()
    except ValueError as error:
        raise SlicerCloudError(f"Invalid SLICER_CLOUD_DASK_TLS_* setting: {error}", status=500) from None


def _from_files(tls: DaskTlsSettings) -> Security:
    from distributed.security import Security

    named = {"SLICER_CLOUD_DASK_TLS_CA_FILE": tls.ca_file, "SLICER_CLOUD_DASK_TLS_CERT_FILE": tls.cert_file,
             "SLICER_CLOUD_DASK_TLS_KEY_FILE": tls.key_file}  # fmt: skip
    missing = [name for name, path in named.items() if path is None]
    if missing:
        raise SlicerCloudError(f"Dask TLS needs all three files; missing: {', '.join(missing)}.", status=500)
    unreadable = [f"{name}={path}" for name, path in named.items() if not (path.is_file() and os.access(path, os.R_OK))]
    if unreadable:
        raise SlicerCloudError(f"Dask TLS files that cannot be read: {', '.join(unreadable)}.", status=500)
    ca, cert, key = (str(path) for path in named.values())
    return Security(
        require_encryption=True,
        tls_ca_file=ca,
        tls_client_cert=cert,
        tls_client_key=key,
        tls_scheduler_cert=cert,
        tls_scheduler_key=key,
        tls_worker_cert=cert,
        tls_worker_key=key,
    )


__all__ = ["DaskTlsSettings", "dask_security"]
