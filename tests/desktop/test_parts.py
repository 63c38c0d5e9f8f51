"""The desktop's parts on their own: the noVNC pin, finding Slicer, planning the programs."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from slicer_cloud.desktop.novnc import PINNED_VERSION, load_novnc
from slicer_cloud.desktop.programs import NOT_INSTALLED_MESSAGE, find_slicer, plan_desktop
from slicer_cloud.desktop.settings import parse_geometry
from slicer_cloud.desktop.xserver import write_xauthority
from slicer_cloud.errors import SlicerCloudError

DEBIAN_NOVNC = Path("/usr/share/novnc")


def test_the_installed_novnc_is_the_pinned_version():
    library = load_novnc(DEBIAN_NOVNC)
    assert library.version == PINNED_VERSION and library.pinned
    assert "core/rfb.js" in library.files and "vendor/pako/lib/zlib/inflate.js" in library.files
    assert not any(name.endswith(".html") for name in library.files)


def test_a_changed_novnc_is_refused_unless_allowed(tmp_path):
    copy = tmp_path / "novnc"
    shutil.copytree(DEBIAN_NOVNC / "core", copy / "core")
    shutil.copytree(DEBIAN_NOVNC / "vendor", copy / "vendor")
    assert load_novnc(copy).pinned
    with open(copy / "core" / "rfb.js", "a") as handle:
        handle.write("\n// changed\n")
    with pytest.raises(SlicerCloudError, match="not the pinned version 1.3.0"):
        load_novnc(copy)
    assert load_novnc(copy, allow_unpinned=True).version == "unpinned"
    with pytest.raises(SlicerCloudError, match="apt-get install novnc"):
        load_novnc(tmp_path / "nowhere")


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_find_slicer_order(tmp_path):
    cache = tmp_path / "cache"
    env = {"PATH": str(tmp_path / "empty")}
    assert find_slicer(None, cache, env) is None
    old = _executable(cache / "slicer" / "Slicer-5.6.2-linux-amd64" / "Slicer")
    new = _executable(cache / "slicer" / "Slicer-5.10.0-linux-amd64" / "Slicer")
    assert find_slicer(None, cache, env) == new  # newest installed release, by number not by text
    assert old != new
    on_path = _executable(tmp_path / "bin" / "Slicer")
    env["PATH"] = str(on_path.parent)
    assert find_slicer(None, cache, env) == on_path
    from_env = _executable(tmp_path / "env" / "Slicer")
    env["SLICER_EXECUTABLE"] = str(from_env)
    assert find_slicer(None, cache, env) == from_env.resolve()
    explicit = _executable(tmp_path / "explicit" / "Slicer")
    assert find_slicer(explicit, cache, env) == explicit.resolve()
    with pytest.raises(SlicerCloudError, match="--slicer .*no executable file"):
        find_slicer(tmp_path / "missing" / "Slicer", cache, env)
    env["SLICER_EXECUTABLE"] = str(tmp_path / "README")
    with pytest.raises(SlicerCloudError, match="SLICER_EXECUTABLE"):
        find_slicer(None, cache, env)


def test_plan_without_slicer_is_the_fallback(tmp_path):
    env = {"PATH": os.environ["PATH"], "DISPLAY": ":9", "VTK_DEFAULT_OPENGL_WINDOW": "vtkEGLRenderWindow"}
    plan = plan_desktop(slicer=None, app=None, slicer_args=["--no-splash"], data_dir=tmp_path, env=env)
    assert plan.mode == "fallback" and not plan.slicer_installed
    assert plan.message == NOT_INSTALLED_MESSAGE
    names = [spec.name for spec in plan.programs]
    assert names == ["terminal", "fallback viewer"]
    viewer = plan.programs[-1]
    assert viewer.cwd == tmp_path
    # On the X display, never the offscreen EGL window.
    assert "VTK_DEFAULT_OPENGL_WINDOW" not in viewer.env
    assert any("ignored" in note for note in plan.notes)


def test_plan_app_and_errors(tmp_path):
    env = {"PATH": os.environ["PATH"], "DISPLAY": ":9"}
    plan = plan_desktop(slicer=None, app="xterm -fa 'DejaVu Sans Mono'", slicer_args=["-e", "top"], data_dir=tmp_path, env=env)
    assert plan.mode == "app" and plan.programs[0].argv[-4:] == ["-fa", "DejaVu Sans Mono", "-e", "top"]
    with pytest.raises(SlicerCloudError, match="not found"):
        plan_desktop(slicer=None, app="no-such-program-here", slicer_args=[], data_dir=tmp_path, env=env)
    with pytest.raises(SlicerCloudError, match="not a valid command"):
        plan_desktop(slicer=None, app="xterm 'unbalanced", slicer_args=[], data_dir=tmp_path, env=env)


@pytest.mark.parametrize("text", ["1600x900", " 800x600 "])
def test_geometry_accepted(text):
    assert parse_geometry(text)[0] in (1600, 800)


@pytest.mark.parametrize("text", ["1600", "1600x90", "99999x900", "axb", "1600x900x24"])
def test_geometry_refused(text):
    with pytest.raises(SlicerCloudError, match="geometry"):
        parse_geometry(text)


def test_xauthority_is_private_and_well_formed(tmp_path):
    path = tmp_path / "Xauthority"
    cookie = write_xauthority(path)
    data = path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(cookie) == 16 and data.endswith(cookie)
    assert data[:2] == b"\xff\xff"  # family 'wild': any display of this host
    assert b"MIT-MAGIC-COOKIE-1" in data


def test_gpu_uses_virtualgl_where_installed_else_egl(tmp_path):
    slicer = _executable(tmp_path / "Slicer")
    env = {"PATH": str(tmp_path / "nothing"), "DISPLAY": ":9"}
    plan = plan_desktop(slicer=slicer, app=None, slicer_args=[], data_dir=tmp_path, env=env, gpu=True)
    assert plan.programs[0].argv == [str(slicer)]
    assert plan.programs[0].env["QT_XCB_GL_INTEGRATION"] == "xcb_egl"
    vglrun = _executable(tmp_path / "vgl" / "vglrun")
    env["PATH"] = str(vglrun.parent)
    plan = plan_desktop(slicer=slicer, app=None, slicer_args=["--no-splash"], data_dir=tmp_path, env=env, gpu=True)
    assert plan.programs[0].argv == [str(vglrun), str(slicer), "--no-splash"]
    assert plan.programs[0].env["VGL_DISPLAY"] == "egl"
    assert "QT_XCB_GL_INTEGRATION" not in plan.programs[0].env
