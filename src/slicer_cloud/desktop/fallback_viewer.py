"""The fallback desktop program: a small VTK window with a slice and a 3D view of a volume.

It runs where the Slicer desktop is not installed, so the remote desktop still shows something
useful, and it is what the tests and the benchmark look at:

* a magenta title band (RGB 255, 0, 255) across the top that a test can find on the screen;
* Up/Down (or PageUp/PageDown) move the slice, Left/Right turn the 3D view;
* Space starts/stops spinning the 3D view, ``a`` starts/stops scrolling the slices.

Run: ``python -m slicer_cloud.desktop.fallback_viewer [--volume FILE]`` on an X display.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# On the desktop the window must appear on the X display; never take the offscreen default.
if os.environ.get("VTK_DEFAULT_OPENGL_WINDOW", "").endswith("EGLRenderWindow"):
    del os.environ["VTK_DEFAULT_OPENGL_WINDOW"]

import numpy as np  # noqa: E402
import vtk  # noqa: E402
from vtk.util import numpy_support  # noqa: E402

#: the title band's colour, exact: tests look for it on the remote screen
BAND_RGB = (255, 0, 255)
BAND_FRACTION = 0.1
WINDOW_SIZE = (900, 560)
SPIN_DEGREES = 4.0
TIMER_MS = 50
TITLE = "slicer-cloud fallback viewer"


def synthetic_volume(size: int = 96) -> vtk.vtkImageData:
    """A head-like phantom: an ellipsoid shell with brighter blobs inside, uint16."""
    z, y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j, -1 : 1 : size * 1j]
    r = np.sqrt((x / 0.85) ** 2 + (y / 0.95) ** 2 + (z / 0.8) ** 2)
    data = np.where(r < 0.95, 300, 0) + np.where(r < 0.85, 700, 0)
    for cx, cy, cz, radius, value in ((0.3, 0.2, 0.1, 0.2, 900), (-0.35, -0.1, -0.2, 0.25, 600), (0.0, -0.45, 0.3, 0.15, 1200)):
        data += np.where((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 < radius**2, value, 0)
    image = vtk.vtkImageData()
    image.SetDimensions(size, size, size)
    image.SetSpacing(1.0, 1.0, 1.0)
    array = numpy_support.numpy_to_vtk(data.astype(np.uint16).ravel(order="C"), deep=True)
    array.SetName("scalars")
    image.GetPointData().SetScalars(array)
    return image


def read_volume(path: Path) -> vtk.vtkImageData:
    name = path.name.lower()
    if name.endswith((".nrrd", ".nhdr")):
        reader = vtk.vtkNrrdReader()
    elif name.endswith((".nii", ".nii.gz")):
        reader = vtk.vtkNIFTIImageReader()
    elif name.endswith((".mha", ".mhd")):
        reader = vtk.vtkMetaImageReader()
    elif name.endswith(".vti"):
        reader = vtk.vtkXMLImageDataReader()
    else:
        raise SystemExit(f"fallback viewer: cannot read {path.name} (NRRD, NIfTI, MetaImage or VTI).")
    reader.SetFileName(str(path))
    reader.Update()
    image = reader.GetOutput()
    if image.GetNumberOfPoints() == 0:
        raise SystemExit(f"fallback viewer: {path} holds no image.")
    return image


class FallbackViewer:
    """One window: a title band, the slice view on the left, the 3D view on the right."""

    def __init__(self, image: vtk.vtkImageData, title: str):
        self.image = image
        extent = image.GetExtent()
        self.k_min, self.k_max = extent[4], extent[5]
        self.k = (self.k_min + self.k_max) // 2
        self.spinning = False
        self.scrolling = False
        low, high = _robust_range(image)

        self.window = vtk.vtkRenderWindow()
        self.window.SetSize(*WINDOW_SIZE)
        self.window.SetWindowName(TITLE)
        self.window.SetMultiSamples(0)

        # Title band: a renderer whose background is the marker colour.
        band = vtk.vtkRenderer()
        band.SetViewport(0.0, 1.0 - BAND_FRACTION, 1.0, 1.0)
        band.SetBackground(*(c / 255.0 for c in BAND_RGB))
        band.InteractiveOff()
        band.AddViewProp(_text(title, 16, (1, 1, 1), (10, 14)))
        self.window.AddRenderer(band)

        # Slice view: one axial slice through window/level colours.
        self.slice_renderer = vtk.vtkRenderer()
        self.slice_renderer.SetViewport(0.0, 0.0, 0.5, 1.0 - BAND_FRACTION)
        self.slice_renderer.SetBackground(0.0, 0.0, 0.0)
        self.slice_renderer.InteractiveOff()
        colours = vtk.vtkImageMapToWindowLevelColors()
        colours.SetInputData(image)
        colours.SetWindow(max(high - low, 1.0))
        colours.SetLevel((high + low) / 2.0)
        self.slice_actor = vtk.vtkImageActor()
        self.slice_actor.GetMapper().SetInputConnection(colours.GetOutputPort())
        self.slice_renderer.AddActor(self.slice_actor)
        self.slice_label = _text("", 14, (1, 1, 0.3), (8, 8))
        self.slice_renderer.AddViewProp(self.slice_label)
        self.window.AddRenderer(self.slice_renderer)
        self._show_slice()
        self.slice_renderer.ResetCamera()
        self.slice_renderer.GetActiveCamera().Zoom(1.3)

        # 3D view: an isosurface of a shrunken copy (cheap to render in software).
        self.view_renderer = vtk.vtkRenderer()
        self.view_renderer.SetViewport(0.5, 0.0, 1.0, 1.0 - BAND_FRACTION)
        self.view_renderer.SetBackground(0.1, 0.12, 0.25)
        self.view_renderer.AddActor(_isosurface(image, _surface_level(low, high)))
        self.view_renderer.AddViewProp(_text("Up/Down: slice  Left/Right: turn\nSpace: spin  a: scroll slices", 12, (0.9, 0.9, 0.9), (8, 8)))
        self.window.AddRenderer(self.view_renderer)
        self.view_renderer.ResetCamera()
        self.view_renderer.GetActiveCamera().Elevation(20)

        self.interactor = vtk.vtkRenderWindowInteractor()
        self.interactor.SetRenderWindow(self.window)
        style = vtk.vtkInteractorStyleTrackballCamera()
        # An observer on the style replaces its default key handling (which quits on 'q'/'e').
        style.AddObserver("CharEvent", lambda *_: None)
        style.AddObserver("KeyPressEvent", self._on_key)
        self.interactor.SetInteractorStyle(style)
        self.interactor.AddObserver("TimerEvent", self._on_timer)

    def _show_slice(self) -> None:
        e = self.image.GetExtent()
        self.slice_actor.SetDisplayExtent(e[0], e[1], e[2], e[3], self.k, self.k)
        self.slice_label.SetInput(f"slice {self.k - self.k_min + 1}/{self.k_max - self.k_min + 1}")

    def move_slice(self, step: int) -> None:
        span = self.k_max - self.k_min + 1
        self.k = self.k_min + (self.k - self.k_min + step) % span
        self._show_slice()

    def turn(self, degrees: float) -> None:
        self.view_renderer.GetActiveCamera().Azimuth(degrees)

    def _on_key(self, _obj, _event) -> None:
        key = self.interactor.GetKeySym()
        if key in ("Up", "Prior"):
            self.move_slice(1 if key == "Up" else 10)
        elif key in ("Down", "Next"):
            self.move_slice(-1 if key == "Down" else -10)
        elif key == "Left":
            self.turn(-10)
        elif key == "Right":
            self.turn(10)
        elif key == "space":
            self.spinning = not self.spinning
        elif key == "a":
            self.scrolling = not self.scrolling
        else:
            return
        self.window.Render()

    def _on_timer(self, _obj, _event) -> None:
        if not (self.spinning or self.scrolling):
            return
        if self.spinning:
            self.turn(SPIN_DEGREES)
        if self.scrolling:
            self.move_slice(1)
        self.window.Render()

    def run(self) -> None:
        self.interactor.Initialize()
        self.window.Render()
        self.interactor.CreateRepeatingTimer(TIMER_MS)
        self.interactor.Start()


def _robust_range(image: vtk.vtkImageData) -> tuple[float, float]:
    values = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
    sample = values[:: max(1, values.size // 200_000)].astype(np.float64)
    low, high = np.percentile(sample, [1, 99.5])
    if high <= low:
        low, high = float(sample.min()), float(sample.max()) or 1.0
    return float(low), float(high)


def _surface_level(low: float, high: float) -> float:
    """Bone and contrast-filled vessels for a CT (air at -1000 HU), else a third of the range."""
    if low <= -900 and high >= 300:
        return 200.0
    return low + 0.35 * (high - low)


def _isosurface(image: vtk.vtkImageData, level: float) -> vtk.vtkActor:
    dims = image.GetDimensions()
    shrink = vtk.vtkImageShrink3D()
    shrink.SetInputData(image)
    factor = max(1, int(np.ceil(max(dims) / 128)))
    shrink.SetShrinkFactors(factor, factor, factor)
    shrink.AveragingOn()
    surface = vtk.vtkFlyingEdges3D()
    surface.SetInputConnection(shrink.GetOutputPort())
    surface.SetValue(0, level)
    surface.ComputeNormalsOn()
    mapper = vtk.vtkPolyDataMapper()
    mapper.SetInputConnection(surface.GetOutputPort())
    mapper.ScalarVisibilityOff()
    actor = vtk.vtkActor()
    actor.SetMapper(mapper)
    actor.GetProperty().SetColor(0.95, 0.85, 0.7)
    return actor


def _text(text: str, size: int, colour: tuple[float, float, float], position: tuple[int, int]) -> vtk.vtkTextActor:
    actor = vtk.vtkTextActor()
    actor.SetInput(text)
    actor.GetTextProperty().SetFontSize(size)
    actor.GetTextProperty().SetColor(*colour)
    actor.SetPosition(*position)  # viewport pixels, not window pixels
    return actor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", type=Path, help="NRRD, NIfTI, MetaImage or VTI; default: a synthetic phantom")
    parser.add_argument("--title", default="slicer-cloud: Slicer desktop not installed (fallback viewer)")
    args = parser.parse_args(argv)
    image = read_volume(args.volume) if args.volume else synthetic_volume()
    FallbackViewer(image, args.title).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
