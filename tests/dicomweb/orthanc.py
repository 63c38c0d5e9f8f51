"""A real Orthanc (Debian's ``orthanc`` + ``orthanc-dicomweb``) on loopback, for tests and benchmarks.

Its own configuration: a free port on 127.0.0.1, no DICOM listener, no remote access, the
DICOMweb plugin, HTTP basic authentication on, storage in a folder of the caller's. Stopped by
its PID.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from slicer_cloud.web.serving import free_port

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
USER, PASSWORD = "radiologist", "s3cret-pacs"


@dataclass
class Orthanc:
    process: subprocess.Popen
    port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def server(self, name: str = "orthanc", **overrides):
        from slicer_cloud.dicomweb.settings import DicomwebServer

        fields = dict(name=name, url=self.dicomweb_url, auth="basic", username=USER, password=PASSWORD)
        fields.update(overrides)
        return DicomwebServer.model_validate(fields)

    def servers_env(self, name: str = "orthanc") -> dict[str, str]:
        """Environment naming this Orthanc as a slicer-cloud DICOMweb server (for child processes)."""
        return {"SLICER_CLOUD_DICOMWEB_SERVERS": json.dumps(
            [{"name": name, "url": self.dicomweb_url, "auth": "basic", "username": USER, "password": PASSWORD}]
        )}

    def rest(self, path: str, **kwargs):
        response = requests.get(self.url + path, auth=(USER, PASSWORD), timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_orthanc(folder: Path, *, timeout: float = 60) -> Orthanc:
    if not Path(ORTHANC).exists() or not DICOMWEB_PLUGIN.exists():
        raise RuntimeError("Orthanc or its DICOMweb plugin is missing: install Debian's orthanc and orthanc-dicomweb "
                           "(scripts/apt-packages.txt; ./scripts/bootstrap.sh does it).")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "Name": "slicer-cloud-test",
        "HttpPort": port,
        "RemoteAccessAllowed": False,  # loopback only
        "DicomServerEnabled": False,
        "DicomPort": 0,
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD},
        "HttpCompressionEnabled": False,
        "ConcurrentJobs": 2,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "StudiesMetadata": "Full",
                     "SeriesMetadata": "Full"},
    }
    config_path = folder / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=1))
    log = open(folder / "orthanc.log", "w")
    process = subprocess.Popen([ORTHANC, str(config_path)], stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    server = Orthanc(process=process, port=port, folder=folder)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Orthanc exited at start:\n{(folder / 'orthanc.log').read_text()[-3000:]}")
        try:
            if requests.get(server.url + "/system", auth=(USER, PASSWORD), timeout=2).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"Orthanc did not answer within {timeout:.0f} s:\n{(folder / 'orthanc.log').read_text()[-3000:]}")


def phantom_datasets(shape=(64, 64, 24), *, description="Phantom CT", series_uid=None, syntax=None):
    """The built-in sample as a DICOM series (pydicom datasets), optionally compressed."""
    import tempfile

    import pydicom

    from slicer_cloud.core.phantom import make_phantom, write_dicom_series

    phantom = make_phantom(shape, spacing=(1.5, 1.5, 3.0))
    with tempfile.TemporaryDirectory() as tmp:
        files = write_dicom_series(Path(tmp), phantom, description=description, series_uid=series_uid)
        datasets = [pydicom.dcmread(f) for f in files]
    if syntax is not None:
        for ds in datasets:
            ds.compress(syntax)
    return phantom, datasets
