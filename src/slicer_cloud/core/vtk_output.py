"""VTK in a process without a display: its messages go to Python logging, and it never creates an
X window interactor.

VTK prints warnings and errors itself (to stderr, in red in a notebook) through its output
window, and its default interactor on Linux is the X one, which warns about X-only events even
when nothing is drawn on X. Here the render windows are offscreen (EGL), events come from a
browser or nowhere, so the plain ``vtkRenderWindowInteractor`` does the job, and every VTK
message becomes a record of the ``slicer_cloud.vtk`` logger that the process's log settings
filter like any other.
"""

from __future__ import annotations

import logging
import os

import slicer_cloud.core.vtk_env  # noqa: F401  (must precede the VTK imports)
from vtkmodules.util.misc import calldata_type
from vtkmodules.util.vtkConstants import VTK_STRING
from vtkmodules.vtkCommonCore import vtkLogger, vtkObjectFactory, vtkOutputWindow

log = logging.getLogger("slicer_cloud.vtk")

#: VTK notices about its own API changes: nothing a user of slicer-cloud can act on.
_NOT_ACTIONABLE = ("deprecated", "will not be generated", "after VTK 9")

_installed: vtkOutputWindow | None = None


def headless() -> bool:
    """Rendering offscreen (EGL, the default here) or no X display at all."""
    return os.environ.get("VTK_DEFAULT_OPENGL_WINDOW", "").endswith("EGLRenderWindow") or not os.environ.get("DISPLAY")


def no_x_interactor() -> None:
    """New interactors are the plain, display-free ``vtkRenderWindowInteractor``."""
    import vtkmodules.vtkRenderingUI  # noqa: F401  (registers the X override we turn off)

    vtkObjectFactory.SetAllEnableFlags(False, "vtkRenderWindowInteractor", "vtkXRenderWindowInteractor")


def _text(kind: str):
    @calldata_type(VTK_STRING)
    def handler(_obj, _event, text) -> None:
        message = (text or "").strip()
        if not message:
            return
        level = logging.ERROR if kind == "error" else logging.WARNING if kind == "warning" else logging.DEBUG
        if level == logging.WARNING and any(marker in message for marker in _NOT_ACTIONABLE):
            level = logging.DEBUG
        log.log(level, "%s", message)

    return handler


def route_vtk_output() -> None:
    """Make a VTK output window that only forwards to logging the instance (again: libraries that
    install their own, like trame-slicer's ``SlicerApp``, replace ours)."""
    global _installed
    window = vtkOutputWindow()
    window.SetDisplayModeToNever()
    window.AddObserver("ErrorEvent", _text("error"))
    window.AddObserver("WarningEvent", _text("warning"))
    window.AddObserver("TextEvent", _text("text"))
    vtkOutputWindow.SetInstance(window)
    vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_OFF)  # VTK's own logger repeats every warning on stderr
    _installed = window  # keep the Python observers alive


def quiet_vtk() -> None:
    """Both of the above, for a process that renders offscreen."""
    if headless():
        no_x_interactor()
    route_vtk_output()
