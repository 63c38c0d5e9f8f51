"""Upload staging: a browser can name only a staged file (never another file of the data
folder), and staging left by a tab that closed is swept at start and periodically."""

from __future__ import annotations

import os
import time

import pytest
import requests

from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store import DataRoot
from slicer_cloud.viewer.staging import STAGING_DIR, resolve_staged, sweep_stale
from tests.conftest import start_service


@pytest.fixture
def data(tmp_path):
    root = tmp_path / "data"
    (root / STAGING_DIR / "0123abcd").mkdir(parents=True)
    (root / STAGING_DIR / "0123abcd" / "scan.nrrd").write_bytes(b"staged")
    (root / "keep.nrrd").write_bytes(b"the user's file")
    (root / "sub").mkdir()
    (root / "sub" / STAGING_DIR / "x").mkdir(parents=True)
    (root / "sub" / STAGING_DIR / "x" / "y.nrrd").write_bytes(b"not staging")
    os.symlink(root / "keep.nrrd", root / STAGING_DIR / "0123abcd" / "link.nrrd")
    return DataRoot(root)


def test_a_staged_file_resolves(data):
    assert resolve_staged(data, f"{STAGING_DIR}/0123abcd/scan.nrrd").read_bytes() == b"staged"


@pytest.mark.parametrize(
    "name",
    [
        "keep.nrrd",  # a data file: a session would have deleted it when refusing it
        f"{STAGING_DIR}/0123abcd",  # the folder
        f"sub/{STAGING_DIR}/x/y.nrrd",  # a folder that merely has the same name
        f"{STAGING_DIR}/0123abcd/link.nrrd",  # a link from staging to a data file
        f"{STAGING_DIR}/0123abcd/../../keep.nrrd",
        "/etc/passwd",
    ],
)
def test_anything_else_a_browser_names_is_refused(data, name):
    with pytest.raises(SlicerCloudError) as refused:
        resolve_staged(data, name)
    assert refused.value.status == 403
    assert (data.root / "keep.nrrd").read_bytes() == b"the user's file"


def test_sweep_removes_only_stale_staging(data):
    fresh = data.root / STAGING_DIR / "fresh"
    fresh.mkdir()
    (fresh / "uploading.nrrd").write_bytes(b"...")
    old = time.time() - 7200
    os.utime(data.root / STAGING_DIR / "0123abcd" / "scan.nrrd", (old, old))
    os.utime(data.root / STAGING_DIR / "0123abcd" / "link.nrrd", (old, old), follow_symlinks=False)
    os.utime(data.root / STAGING_DIR / "0123abcd", (old, old))
    assert sweep_stale(data, 3600) == 1
    assert not (data.root / STAGING_DIR / "0123abcd").exists()
    assert (fresh / "uploading.nrrd").exists()
    assert (data.root / "keep.nrrd").exists()  # a link's target is never touched


def _wait_gone(path, timeout_s: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not path.exists():
            return True
        time.sleep(0.2)
    return False


def test_the_gateway_sweeps_stale_staging_at_start_and_while_running(tmp_path):
    data = tmp_path / "data"
    left = data / STAGING_DIR / "from-a-past-run"
    left.mkdir(parents=True)
    (left / "scan.nrrd").write_bytes(b"abandoned")
    old = time.time() - 7200
    for path in (left / "scan.nrrd", left):
        os.utime(path, (old, old))
    service = start_service(
        ["view", "--data", str(data), "--port", "0", "--token", "t", "--no-open"],
        cwd=data,
        log_path=tmp_path / "gateway.log",
        env={"SLICER_CLOUD_SPARE_SESSIONS": "0", "SLICER_CLOUD_UPLOAD_STAGING_MAX_AGE_S": "4"},
    )
    try:
        assert _wait_gone(left), "staging from a past run was not swept at start"
        # an upload whose tab closed before opening it
        reply = requests.post(
            service.base + "api/upload?name=scan.nrrd", data=b"x" * 100, headers={"Authorization": "Bearer t"}, timeout=30
        )
        assert reply.status_code == 201
        staged = data / reply.json()["staged"]
        assert staged.exists()
        assert _wait_gone(staged.parent), "an abandoned upload was never swept"
        assert requests.get(service.base + "api/health", timeout=10).status_code == 200
    finally:
        service.stop()
