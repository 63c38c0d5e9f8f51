"""`slicer-cloud desktop install-slicer` against a download server on loopback that speaks the
official one's protocol (/find JSON record, archive download), and against no server at all."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from slicer_cloud.desktop.install import install_slicer
from slicer_cloud.desktop.settings import DesktopSettings
from slicer_cloud.errors import SlicerCloudError

VERSION = "5.8.1"


def make_archive(*, evil: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        members = {f"Slicer-{VERSION}-linux-amd64/Slicer": b"#!/bin/sh\necho Slicer\n", f"Slicer-{VERSION}-linux-amd64/lib/README": b"x" * 1000}
        if evil:
            members["../escaped.txt"] = b"outside"
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class DownloadServer:
    """Answers /find with a release record and /bitstream/1 with the archive."""

    def __init__(self, archive: bytes, *, sha512: str | None = None):
        self.archive = archive
        self.record = {
            "version": VERSION,
            "arch": "amd64",
            "os": "linux",
            "size": len(archive),
            "sha512": sha512 or hashlib.sha512(archive).hexdigest(),
            "download_url": "/bitstream/1",
            "name": f"Slicer-{VERSION}-linux-amd64.tar.gz",
        }
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                owner.requests.append(self.path)
                if self.path.startswith("/find?"):
                    body, ctype = json.dumps(owner.record).encode(), "application/json"
                elif self.path == "/bitstream/1":
                    body, ctype = owner.archive, "application/octet-stream"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def cli(*args: str, url: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, SLICER_CLOUD_SLICER_DOWNLOAD_URL=url, SLICER_CLOUD_DOWNLOAD_CONNECT_TIMEOUT_S="3")
    return subprocess.run(
        [sys.executable, "-m", "slicer_cloud.cli", "desktop", "install-slicer", *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def closed_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again on exit: nothing listens there


def test_offline_fails_fast_and_clearly(tmp_path):
    result = cli("--dest", str(tmp_path / "slicer"), url=f"http://127.0.0.1:{closed_loopback_port()}")
    assert result.returncode != 0
    assert "Cannot reach Slicer's download server" in result.stderr
    assert "no internet access" in result.stderr and "--slicer" in result.stderr
    assert not list((tmp_path / "slicer").glob("Slicer-*"))


def test_install_verifies_unpacks_and_caches(tmp_path):
    dest = tmp_path / "slicer"
    with DownloadServer(make_archive()) as server:
        result = cli("--version", VERSION, "--dest", str(dest), url=server.url)
        assert result.returncode == 0, result.stderr
        executable = dest / f"Slicer-{VERSION}-linux-amd64" / "Slicer"
        assert f"Slicer is installed: {executable}" in result.stdout
        assert os.access(executable, os.X_OK)
        assert not list((dest / "downloads").glob("*")), "the archive is removed once unpacked"
        downloads = sum(path == "/bitstream/1" for path in server.requests)
        again = cli("--version", VERSION, "--dest", str(dest), url=server.url)
        assert again.returncode == 0 and str(executable) in again.stdout
        assert sum(path == "/bitstream/1" for path in server.requests) == downloads  # cached
    # The desktop then finds it in the cache.
    from slicer_cloud.desktop.programs import find_slicer

    assert find_slicer(None, tmp_path, {"PATH": str(tmp_path / "empty")}) == executable


def test_wrong_checksum_installs_nothing(tmp_path):
    dest = tmp_path / "slicer"
    with DownloadServer(make_archive(), sha512="0" * 128) as server:
        settings = DesktopSettings(slicer_download_url=server.url)
        with pytest.raises(SlicerCloudError, match="does not match its SHA-512"):
            install_slicer(VERSION, dest, settings)
    assert [p.name for p in dest.rglob("*")] == ["downloads"]


def test_archive_escaping_its_folder_is_refused(tmp_path):
    dest = tmp_path / "slicer"
    with DownloadServer(make_archive(evil=True)) as server:
        with pytest.raises(SlicerCloudError, match="cannot be unpacked"):
            install_slicer(VERSION, dest, DesktopSettings(slicer_download_url=server.url))
    assert not (tmp_path / "escaped.txt").exists()
    assert not list(dest.glob("Slicer-*")) and not list(dest.glob(".unpack-*"))


def test_bad_version_text_is_refused(tmp_path):
    with pytest.raises(SlicerCloudError, match="--version must look like"):
        install_slicer("latest; rm -rf /", tmp_path, DesktopSettings(slicer_download_url="http://127.0.0.1:1"))
