"""The checks of ``slicer-cloud doctor``: one function per requirement, each returning a
:class:`Check` that says what was found and, when something is missing, the command that fixes it.
Checks look; they never install or start anything."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from slicer_cloud.config import default_cache_dir

OK, MISSING, OPTIONAL = "ok", "missing", "optional"

#: the ways to work, as the README names them
VIEWER, DESKTOP, NOTEBOOK, COMPUTE, HUB, DEPLOY, TESTS = (
    "web viewer", "remote desktop", "notebook", "compute API", "hub", "deployments", "tests",
)  # fmt: skip
PROBE_TIMEOUT_S = 120


@dataclass
class Check:
    name: str
    needed_by: tuple[str, ...]
    status: str  # ok | missing | optional (absent, and nothing stops working without it)
    detail: str
    fix: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["needed_by"] = list(self.needed_by)
        return data


def _apt(*packages: str) -> str:
    return "apt-get install -y " + " ".join(packages)


def _run(argv: list[str], timeout: float = 15) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


# --- rendering ------------------------------------------------------------------------------------
def check_offscreen_rendering(cache_dir: Path | None = None) -> Check:
    """Render a test image offscreen in a process of its own, as the viewer and workers do."""
    name, needed = "Offscreen rendering (EGL)", (VIEWER, NOTEBOOK, COMPUTE)
    fix = _apt("libegl1", "libegl-mesa0", "libgl1", "libglx-mesa0", "libgles2")
    image = (cache_dir or default_cache_dir()) / "doctor" / "offscreen-test.png"
    env = {**os.environ, "VTK_DEFAULT_OPENGL_WINDOW": os.environ.get("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "slicer_cloud.doctor.render_probe", str(image)],
            capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env=env,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return Check(name, needed, MISSING, f"the test render did not finish in {PROBE_TIMEOUT_S} s", fix)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        reason = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return Check(name, needed, MISSING, f"the test render crashed: {reason}", fix)
    result = json.loads(lines[-1])
    if not result.get("ok"):
        reason = result.get("error") or f"the test image is blank ({result.get('renderer', '?')})"
        return Check(name, needed, MISSING, reason, fix, extra=result)
    return Check(name, needed, OK, f"rendered a test image with {result['renderer']}: {result['image']}", extra=result)


# --- remote desktop -------------------------------------------------------------------------------
def check_xvnc() -> Check:
    from slicer_cloud.desktop.xserver import supports_unix_socket

    name, needed, fix = "Xvnc (TigerVNC's X server)", (DESKTOP,), _apt("tigervnc-standalone-server")
    found = shutil.which("Xvnc")
    if not found:
        return Check(name, needed, MISSING, "Xvnc is not on the PATH", fix)
    if not supports_unix_socket(found):
        return Check(name, needed, MISSING, f"{found} cannot serve VNC on a unix socket (TigerVNC 1.10 or later can)", fix)
    return Check(name, needed, OK, found)


def check_openbox() -> Check:
    name, needed = "openbox (window manager)", (DESKTOP,)
    found = shutil.which("openbox")
    if not found:
        return Check(name, needed, MISSING, "openbox is not on the PATH: windows would have no frames", _apt("openbox"))
    return Check(name, needed, OK, found)


def check_novnc() -> Check:
    from slicer_cloud.desktop.novnc import PINNED_VERSION, load_novnc
    from slicer_cloud.desktop.settings import DesktopSettings
    from slicer_cloud.errors import SlicerCloudError

    name, needed = "noVNC (the browser's VNC client)", (DESKTOP,)
    settings = DesktopSettings()
    try:
        library = load_novnc(settings.novnc_dir, allow_unpinned=settings.novnc_unpinned)
    except SlicerCloudError as error:
        if not (Path(settings.novnc_dir) / "core" / "rfb.js").is_file():
            return Check(name, needed, MISSING, f"not found in {settings.novnc_dir}", _apt("novnc"))
        return Check(name, needed, MISSING, error.message, f"{_apt('novnc')}  (noVNC {PINNED_VERSION})")
    return Check(name, needed, OK, f"noVNC {library.version} in {library.root}")


# --- hub ------------------------------------------------------------------------------------------
def check_hub_proxy(cache_dir: Path | None = None) -> Check:
    from slicer_cloud.hub.chp import PACKAGE, installed_proxy

    name, needed = "Node.js and configurable-http-proxy", (HUB,)
    found = installed_proxy(cache_dir)
    if found is not None:
        return Check(name, needed, OK, str(found))
    if shutil.which("node") and shutil.which("npm"):
        return Check(name, needed, OK, f"Node.js found; `slicer-cloud hub` installs {PACKAGE} on its first start")
    return Check(name, needed, MISSING, "Node.js (node and npm) is not on the PATH: JupyterHub's proxy needs it", _apt("nodejs", "npm"))


# --- deployments ----------------------------------------------------------------------------------
def check_docker() -> Check:
    name, needed = "Docker engine", (DEPLOY,)
    docker = shutil.which("docker")
    if not docker:
        return Check(name, needed, MISSING, "the docker command is not on the PATH", _apt("docker.io", "docker-compose"))
    done = _run([docker, "version", "--format", "{{.Server.Version}}"])
    if done is None or done.returncode != 0 or not done.stdout.strip():
        return Check(name, needed, MISSING, "the docker command is there but no engine answers", "systemctl start docker  (or, without systemd: dockerd &)")
    return Check(name, needed, OK, f"engine {done.stdout.strip()}")


# --- GPU ------------------------------------------------------------------------------------------
def check_gpu() -> Check:
    name, needed = "GPU", (VIEWER, DESKTOP)
    smi = shutil.which("nvidia-smi")
    if smi:
        done = _run([smi, "-L"])
        if done is not None and done.returncode == 0 and done.stdout.strip():
            return Check(name, needed, OK, done.stdout.strip().splitlines()[0])
    render_nodes = sorted(str(p) for p in Path("/dev/dri").glob("renderD*")) if Path("/dev/dri").is_dir() else []
    if render_nodes:
        return Check(name, needed, OK, f"render node {render_nodes[0]} (Mesa uses it where its driver supports the GPU)")
    return Check(
        name, needed, OPTIONAL,
        "none found: everything renders on the CPU (Mesa llvmpipe), fine for slices, slower for 3D volume rendering",
        "install the GPU's driver (NVIDIA: apt-get install -y nvidia-driver, from non-free), then use desktop --gpu",
    )  # fmt: skip


# --- tests ----------------------------------------------------------------------------------------
def check_chromium() -> Check:
    name, needed = "Chromium (browser tests, screenshots)", (TESTS,)
    if Path("/usr/bin/chromium").exists():
        return Check(name, needed, OK, "/usr/bin/chromium")
    return Check(name, needed, MISSING, "/usr/bin/chromium is missing", _apt("chromium", "fonts-dejavu-core"))


ALL_CHECKS: tuple[Callable[[], Check], ...] = (
    check_offscreen_rendering,
    check_xvnc,
    check_openbox,
    check_novnc,
    check_hub_proxy,
    check_docker,
    check_gpu,
    check_chromium,
)


def run_checks() -> list[Check]:
    return [check() for check in ALL_CHECKS]
