"""binder/: what mybinder.org (repo2docker) needs to launch the project."""

from __future__ import annotations

import subprocess
from pathlib import Path

BINDER = Path(__file__).parents[2] / "binder"


def listed(path: Path) -> set[str]:
    return {line.split("#")[0].strip() for line in path.read_text().splitlines()} - {""}


def test_binder_installs_what_the_services_need():
    packages = listed(BINDER / "apt.txt")
    # offscreen rendering, the desktop chain, and node for the hub's proxy
    assert {"libegl1", "libegl-mesa0", "tigervnc-standalone-server", "openbox", "novnc", "nodejs", "npm"} <= packages
    post_build = (BINDER / "postBuild").read_text()
    assert "pip install" in post_build and "sample_data_folder" in post_build


def test_binder_start_sets_the_data_folder_and_runs_the_command(tmp_path: Path):
    done = subprocess.run([str(BINDER / "start"), "env"], capture_output=True, text=True, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=30)
    assert done.returncode == 0, done.stderr
    env = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert env["SLICER_CLOUD_DATA_DIR"] == f"{tmp_path}/.cache/slicer-cloud/sample-data"
