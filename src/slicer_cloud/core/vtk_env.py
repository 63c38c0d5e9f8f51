"""Environment that must be set before VTK is imported: render offscreen through EGL.

Importing this module first (``slicer_cloud.core.scene`` and ``render`` do) lets VTK pick the EGL
render window directly instead of probing for an X display that a server does not have.
"""

import os

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
