"""``slicer-cloud doctor`` on this machine, and with a requirement taken away (Xvnc off the PATH):
it says what is missing, which way to work that stops, and a fix command that the package index
really has; the desktop's own start-up failure points to it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

KEPT_COMMANDS = ("openbox", "node", "npm", "docker")


def doctor(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "slicer_cloud.cli", "doctor", *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.fixture(scope="module")
def path_without_xvnc(tmp_path_factory) -> str:
    """A PATH with the other commands the doctor looks for, and no Xvnc."""
    assert shutil.which("Xvnc"), "this machine has Xvnc (scripts/apt-packages.txt installs it)"
    folder = tmp_path_factory.mktemp("bin")
    for name in KEPT_COMMANDS:
        found = shutil.which(name)
        if found:
            (folder / name).symlink_to(found)
    return str(folder)


def test_this_machine_has_everything_the_ways_to_work_need():
    done = doctor("--json")
    report = json.loads(done.stdout)
    by_name = {check["name"]: check for check in report["checks"]}
    rendering = by_name["Offscreen rendering (EGL)"]
    assert rendering["status"] == "ok", rendering
    assert Path(rendering["extra"]["image"]).stat().st_size > 0  # the test image it rendered
    assert rendering["extra"]["lit_pixels"] > 0
    for name in ("Xvnc (TigerVNC's X server)", "openbox (window manager)", "noVNC (the browser's VNC client)"):
        assert by_name[name]["status"] == "ok", by_name[name]
    assert report["ways"]["web viewer"]["ready"] and report["ways"]["remote desktop"]["ready"]
    assert done.returncode == (0 if report["ok"] else 1)


def test_without_xvnc_the_desktop_is_not_ready_and_the_fix_is_an_installable_package(path_without_xvnc):
    done = doctor("--json", env={"PATH": path_without_xvnc})
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    xvnc = next(check for check in report["checks"] if check["name"].startswith("Xvnc"))
    assert xvnc["status"] == "missing"
    assert xvnc["fix"] == "apt-get install -y tigervnc-standalone-server"
    assert report["ways"]["remote desktop"] == {"ready": False, "missing": ["Xvnc (TigerVNC's X server)"]}
    assert report["ways"]["web viewer"]["ready"]  # nothing else is blamed
    assert next(c for c in report["checks"] if c["name"].startswith("openbox"))["status"] == "ok"
    # the advice is real: the package index has the package it names
    package = xvnc["fix"].split()[-1]
    shown = subprocess.run(["apt-cache", "show", package], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and f"Package: {package}" in shown.stdout

    text = doctor(env={"PATH": path_without_xvnc})
    assert text.returncode == 1
    assert "[missing] Xvnc (TigerVNC's X server), used by: remote desktop" in text.stdout
    assert "fix: apt-get install -y tigervnc-standalone-server" in text.stdout
    assert "Not ready: remote desktop (needs Xvnc (TigerVNC's X server))" in text.stdout


def test_the_desktop_failing_for_want_of_xvnc_points_to_the_doctor(path_without_xvnc, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "slicer_cloud.cli", "desktop", "--port", "0", "--app", "true", "--data", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PATH": path_without_xvnc},
    )  # fmt: skip
    assert done.returncode == 2
    assert "Xvnc) is not installed" in done.stderr
    assert "slicer-cloud doctor" in done.stderr
