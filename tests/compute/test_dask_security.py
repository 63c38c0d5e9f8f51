"""The API's Dask cluster is not an open door: a client without this run's credentials cannot
connect to it (a connected client can run any code as the API's user), and the token-free
health answer names no address, version or engine."""

from __future__ import annotations

import re

import httpx
import pytest
from distributed import Client
from distributed.security import Security

from slicer_cloud.compute.jobs.dask_security import DaskTlsSettings, dask_security
from slicer_cloud.errors import SlicerCloudError

from .conftest import start_api


def _refused(address: str, security: Security | None) -> bool:
    try:
        client = Client(address, security=security, timeout="8s")
    except (OSError, TimeoutError, ValueError, TypeError):
        return True
    client.close()
    return False


def test_a_client_without_credentials_cannot_reach_the_api_cluster(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    server = start_api(data, "--engine", "dask", "--workers", "1")
    try:
        health = httpx.get(server.base + "/api/health")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert not re.search(r"\d+\.\d+\.\d+\.\d+|tcp:|tls:|dask", health.text)

        # The operator's terminal shows the address; an attacker would find the port with ss -ltn.
        address = re.search(r"scheduler=(\w+://127\.0\.0\.1:\d+)", server.log()).group(1)
        host_port = address.split("://", 1)[1]
        assert _refused(f"tcp://{host_port}", None), "a plain TCP client connected to the cluster"
        assert _refused(f"tls://{host_port}", Security.temporary()), "another cluster's credentials were accepted"

        info = httpx.get(server.base + "/api/info", headers=server.headers).json()
        assert info["engine"]["scheduler"] == address and address.startswith("tls://")
        assert httpx.get(server.base + "/api/info").status_code == 401
    finally:
        server.stop()


def test_security_settings_for_an_external_scheduler(tmp_path):
    made = dask_security(new_cluster=True, tls=DaskTlsSettings())
    assert made.require_encryption and made.tls_ca_file and made.tls_client_cert
    with pytest.raises(SlicerCloudError, match="SLICER_CLOUD_DASK_TLS_CA_FILE"):
        dask_security(new_cluster=False, scheduler="tls://10.0.0.1:8786", tls=DaskTlsSettings())
    with pytest.raises(SlicerCloudError, match="missing: SLICER_CLOUD_DASK_TLS_KEY_FILE"):
        dask_security(new_cluster=False, scheduler="tls://h:1", tls=DaskTlsSettings(ca_file=tmp_path, cert_file=tmp_path))
    pem = {}
    for name in ("ca", "cert", "key"):
        pem[name] = tmp_path / f"{name}.pem"
        pem[name].write_text(getattr(made, {"ca": "tls_ca_file", "cert": "tls_client_cert", "key": "tls_client_key"}[name]))
    files = DaskTlsSettings(ca_file=pem["ca"], cert_file=pem["cert"], key_file=pem["key"])
    from_files = dask_security(new_cluster=False, scheduler="tls://h:1", tls=files)
    assert from_files.require_encryption and from_files.tls_client_key == str(pem["key"])
