"""What runs on the desktop: Slicer where it is found, else the fallback (a terminal and a small
VTK viewer of the sample volume), or a command the user names with ``--app``."""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from slicer_cloud.desktop.supervisor import ProgramSpec
from slicer_cloud.errors import SlicerCloudError

log = logging.getLogger(__name__)

SLICER_ENV = "SLICER_EXECUTABLE"

NOT_INSTALLED_MESSAGE = (
    "The Slicer desktop is not installed on this server, so a fallback program runs instead. "
    "Install it with `slicer-cloud desktop install-slicer`, or give --slicer PATH or SLICER_EXECUTABLE."
)


def installed_releases_dir(cache_dir: Path) -> Path:
    """Where ``slicer-cloud desktop install-slicer`` puts releases by default."""
    return Path(cache_dir) / "slicer"


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.parent.name)[:3])


def find_slicer(explicit: Path | None, cache_dir: Path, environ: dict[str, str] | None = None) -> Path | None:
    """The Slicer executable to run: ``--slicer``, else ``SLICER_EXECUTABLE``, else ``Slicer`` on
    PATH, else the newest release installed by ``install-slicer``; None when there is none."""
    env = os.environ if environ is None else environ
    for given, origin in ((explicit, "--slicer"), (env.get(SLICER_ENV) or None, SLICER_ENV)):
        if given:
            path = Path(given).expanduser()
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise SlicerCloudError(f"{origin} {given}: no executable file there.")
            return path.resolve()
    on_path = shutil.which("Slicer", path=env.get("PATH"))
    if on_path:
        return Path(on_path)
    installed = sorted(installed_releases_dir(cache_dir).glob("Slicer-*/Slicer"), key=_version_key)
    installed = [p for p in installed if os.access(p, os.X_OK)]
    return installed[-1] if installed else None


def find_terminal() -> str | None:
    for name in ("xterm", "x-terminal-emulator"):
        found = shutil.which(name)
        if found:
            return found
    return None


def sample_volume(cache_dir: Path) -> Path | None:
    """The package's built-in sample volume (generated into the cache on first use)."""
    try:
        from slicer_cloud.core.phantom import sample_path
    except ImportError:
        return None
    try:
        return Path(sample_path(Path(cache_dir) / "samples"))
    except Exception as error:  # noqa: BLE001 - the viewer then makes its own synthetic volume
        log.warning("The sample volume is not available (%s); the viewer makes a synthetic one.", error)
        return None


@dataclass
class DesktopPlan:
    """The programs to start, and what to tell the user about them."""

    #: 'slicer', 'app' or 'fallback'
    mode: str
    programs: list[ProgramSpec]
    slicer: Path | None
    message: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def slicer_installed(self) -> bool:
        return self.slicer is not None


def gpu_wrapper(env: dict[str, str]) -> list[str]:
    """VirtualGL's ``vglrun`` where installed (OpenGL on the GPU, frames read back into X);
    otherwise ask Qt to create its OpenGL contexts through EGL, which Mesa or the GPU driver
    provides without the X server's software GLX."""
    vglrun = shutil.which("vglrun", path=env.get("PATH"))
    if vglrun:
        # With no 3D X server, VirtualGL 3 talks to the GPU through EGL directly.
        env.setdefault("VGL_DISPLAY", "egl")
        return [vglrun]
    env["QT_XCB_GL_INTEGRATION"] = "xcb_egl"
    log.warning("--gpu: vglrun (VirtualGL) is not installed; using EGL through Qt instead.")
    return []


def plan_desktop(
    *,
    slicer: Path | None,
    app: str | None,
    slicer_args: list[str],
    data_dir: Path,
    env: dict[str, str],
    gpu: bool = False,
    volume: Path | None = None,
) -> DesktopPlan:
    """Decide what runs on the desktop. ``env`` is the X client environment (DISPLAY set);
    ``volume`` is what the fallback viewer shows (None: a synthetic phantom)."""
    program_env = dict(env)
    # X programs render through the X server (GLX), not offscreen: drop the offscreen default.
    program_env.pop("VTK_DEFAULT_OPENGL_WINDOW", None)
    prefix = gpu_wrapper(program_env) if gpu else []
    if app:
        try:
            argv = shlex.split(app)
        except ValueError as error:
            raise SlicerCloudError(f"--app {app!r} is not a valid command: {error}.") from None
        if not argv:
            raise SlicerCloudError("--app is empty.")
        if not shutil.which(argv[0], path=program_env.get("PATH")):
            raise SlicerCloudError(f"--app: {argv[0]} was not found.")
        spec = ProgramSpec(name=Path(argv[0]).name, argv=prefix + argv + slicer_args, env=program_env, cwd=data_dir)
        message = "" if slicer else NOT_INSTALLED_MESSAGE
        return DesktopPlan(mode="app", programs=[spec], slicer=slicer, message=message)
    if slicer:
        spec = ProgramSpec(name="Slicer", argv=prefix + [str(slicer)] + slicer_args, env=program_env, cwd=data_dir)
        return DesktopPlan(mode="slicer", programs=[spec], slicer=slicer)

    programs: list[ProgramSpec] = []
    notes: list[str] = []
    terminal = find_terminal()
    if terminal:
        argv = [terminal]
        if Path(terminal).name == "xterm":
            # Right of the viewer, anchored top left: the page shrinks the screen to the browser
            # window right after connecting, and windows anchored elsewhere would slide off it.
            argv += ["-geometry", "44x30+910+0", "-fa", "DejaVu Sans Mono", "-fs", "10", "-title", "terminal"]
        programs.append(ProgramSpec(name="terminal", argv=argv, env=program_env, cwd=data_dir))
    else:
        notes.append("No terminal program (xterm) is installed; the desktop shows the viewer only.")
    viewer = [sys.executable, "-m", "slicer_cloud.desktop.fallback_viewer"]
    if volume is not None:
        viewer += ["--volume", str(volume)]
    programs.append(ProgramSpec(name="fallback viewer", argv=prefix + viewer, env=program_env, cwd=data_dir))
    if slicer_args:
        notes.append("Arguments after -- are for Slicer, which is not installed; they are ignored.")
    return DesktopPlan(mode="fallback", programs=programs, slicer=None, message=NOT_INSTALLED_MESSAGE, notes=notes)
