"""Renders a small test image offscreen (EGL, as every slicer-cloud renderer does) and reports on
stdout, as one JSON line, whether it drew anything and with which OpenGL renderer. Run in a
process of its own by the doctor: a broken driver may crash or hang, and must not take the doctor
with it."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import slicer_cloud.core.vtk_env  # noqa: F401  (must precede the VTK imports)

SIZE = 96


def render(out: Path) -> dict:
    from vtkmodules.vtkFiltersSources import vtkSphereSource
    from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper, vtkRenderer, vtkRenderWindow

    import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (the OpenGL render window)
    from slicer_cloud.core.render import capture_png
    from slicer_cloud.core.vtk_output import route_vtk_output
    from slicer_cloud.store.atomic import atomic_output

    route_vtk_output()
    sphere = vtkSphereSource()
    sphere.SetThetaResolution(24)
    sphere.SetPhiResolution(24)
    mapper = vtkPolyDataMapper()
    mapper.SetInputConnection(sphere.GetOutputPort())
    actor = vtkActor()
    actor.SetMapper(mapper)
    actor.GetProperty().SetColor(0.9, 0.5, 0.2)
    renderer = vtkRenderer()
    renderer.AddActor(actor)
    renderer.SetBackground(0.0, 0.0, 0.0)
    window = vtkRenderWindow()
    window.SetOffScreenRendering(True)
    window.SetSize(SIZE, SIZE)
    window.AddRenderer(renderer)
    window.Render()
    png = capture_png(window)
    capabilities = window.ReportCapabilities() or ""
    match = re.search(r"OpenGL renderer string:\s*(.+)", capabilities)
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    lit = int((pixels > 40).sum())
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        tmp.write_bytes(png)
    return {
        "ok": lit > SIZE * SIZE // 10,
        "window": window.GetClassName(),
        "renderer": match.group(1).strip() if match else "unknown",
        "lit_pixels": lit,
        "image": str(out),
    }


def main() -> None:
    out = Path(sys.argv[1])
    try:
        result = render(out)
    except Exception as error:  # reported to the doctor, which says what to install
        result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
