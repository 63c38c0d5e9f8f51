"""3D in the browser: the browser renders the volume itself (vtk.js, from the trame-vtk package).

Server-side 3D volume rendering on a CPU is a few frames per second at best, and a drag keeps
the session busy. In local mode the session sends a downsampled copy of the volume once, with
Slicer's volume property (preset, shift) and the volume's placement; the browser then rotates it
on its own GPU (or, without one, its own CPU) and the server only hears about changes of the
property. When the user leaves the view alone, a finer copy follows (``refine``).

The copy lives in a small VTK scene of its own (a plain ray-cast mapper, never rendered here): the
serializer describes it to vtk.js, and Slicer's views and displayable managers stay untouched.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkCommand
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow, vtkVolume
from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkOpenGLGPUVolumeRayCastMapper

log = logging.getLogger("slicer_cloud.viewer")

#: longest side of the first copy sent to the browser (ct512: 128x128x75, 2.4 MB of int16)
FIRST_SIDE = 128
#: longest side of the refined copy sent once the view has been left alone
REFINED_SIDE = 256
#: seconds without a property change or an interaction before the finer copy is sent
REFINE_AFTER_S = 2.0
#: GL renderers that mean "no GPU here" (Mesa's CPU rasterisers, SwiftShader)
SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "swiftshader", "lavapipe")


def downsample(image: vtkImageData, ijk_to_ras: Any, longest_side: int) -> tuple[vtkImageData, int]:
    """A copy in RAS space with every ``step``-th voxel, its longest side at most ``longest_side``.

    The voxel axes are permuted and flipped to the RAS axes (the serializer sends no direction
    matrix, and vtk.js's volume mapper ignores one), with spacing and origin in millimetres; an
    oblique volume keeps its nearest axis-aligned orientation. Returns the copy and the step."""
    dims = image.GetDimensions()
    step = max(1, math.ceil(max(dims) / longest_side))
    scalars = vtk_to_numpy(image.GetPointData().GetScalars())
    ijk = scalars.reshape(dims[2], dims[1], dims[0]).transpose(2, 1, 0)[::step, ::step, ::step]
    matrix = np.array([[ijk_to_ras.GetElement(r, c) for c in range(4)] for r in range(3)])
    ras_axis = [int(np.argmax(np.abs(matrix[:, a]))) for a in range(3)]
    if sorted(ras_axis) != [0, 1, 2]:  # degenerate: keep the voxel order
        ras_axis = [0, 1, 2]
    perm = [ras_axis.index(r) for r in range(3)]  # RAS axis r comes from voxel axis perm[r]
    ras = ijk.transpose(perm)
    spacing, origin = [], []
    for r in range(3):
        a = perm[r]
        column = matrix[:, a]
        size = float(np.linalg.norm(column)) * step
        start = matrix[r, 3]
        if column[r] < 0:
            ras = np.flip(ras, axis=r)
            start -= size * (ras.shape[r] - 1)
        spacing.append(size)
        origin.append(start)
    array = np.ascontiguousarray(ras.transpose(2, 1, 0))  # VTK order: x fastest
    copy = vtkImageData()
    copy.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    copy.SetSpacing(*spacing)
    copy.SetOrigin(*origin)
    vtk_array = numpy_to_vtk(array.ravel(), deep=True)
    vtk_array.SetName("scalars")
    copy.GetPointData().SetScalars(vtk_array)
    return copy, step


def server_has_gpu(render_window: Any) -> bool:
    """Whether this process's OpenGL renders on a GPU (not Mesa's llvmpipe or another CPU one)."""
    try:
        render_window.Render()
        capabilities = (render_window.ReportCapabilities() or "").lower()
    except Exception:  # no usable OpenGL at all: certainly no GPU to spare
        log.debug("could not read the OpenGL capabilities", exc_info=True)
        return False
    return not any(name in capabilities for name in SOFTWARE_RENDERERS)


class LocalVolumeScene:
    """The scene the browser renders: one volume with Slicer's property and placement."""

    def __init__(self) -> None:
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(0.0, 0.0, 0.0)
        self.window = vtkRenderWindow()
        self.window.SetOffScreenRendering(1)
        self.window.AddRenderer(self.renderer)
        self.mapper = vtkOpenGLGPUVolumeRayCastMapper()
        # vtk.js lowers the sample count by itself while the user drags, full quality at rest.
        self.mapper.SetAutoAdjustSampleDistances(True)
        self.volume = vtkVolume()
        self.volume.SetMapper(self.mapper)
        self.volume.SetVisibility(False)
        self.renderer.AddVolume(self.volume)
        self.step = 0  # voxel step of the copy now in the scene (0: none)
        self._source: vtkImageData | None = None

    def show(self, image: vtkImageData, ijk_to_ras: Any, volume_property: Any, *, longest_side: int, reset_camera: bool = True) -> None:
        copy, step = downsample(image, ijk_to_ras, longest_side)
        self._source = image
        self.step = step
        self.mapper.SetInputData(copy)
        # Sample about once per copied voxel: finer buys nothing on a coarse copy.
        self.mapper.SetSampleDistance(0.7 * min(copy.GetSpacing()))
        self.volume.SetProperty(volume_property)
        self.volume.SetVisibility(True)
        if not reset_camera:
            return
        # Slicer's default 3D view: from the front (anterior), head up.
        x0, x1, y0, y1, z0, z1 = copy.GetBounds()
        centre = ((x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2)
        camera = self.renderer.GetActiveCamera()
        camera.SetFocalPoint(*centre)
        camera.SetPosition(centre[0], centre[1] + 1.0, centre[2])
        camera.SetViewUp(0.0, 0.0, 1.0)
        self.renderer.ResetCamera()

    def hide(self) -> None:
        self.volume.SetVisibility(False)
        self.mapper.RemoveAllInputs()
        self._source = None
        self.step = 0

    def refined_step(self, longest_side: int) -> int:
        if self._source is None:
            return 0
        return max(1, math.ceil(max(self._source.GetDimensions()) / longest_side))


class Local3DController:
    """Keeps the browser's copy in step with the session's volume and its rendering property."""

    def __init__(self, scene: LocalVolumeScene, push: Any) -> None:
        self.scene = scene
        self._push = push  # sends the scene to the browser (VtkLocalView.update)
        self._property_node = None
        self._observer = None
        self._refine_handle: asyncio.TimerHandle | None = None
        self._args: tuple | None = None

    def show(self, image: vtkImageData, ijk_to_ras: Any, property_node: Any) -> None:
        self._watch(property_node)
        self._args = (image, ijk_to_ras, property_node.GetVolumeProperty())
        self.scene.show(*self._args, longest_side=FIRST_SIDE)
        self._push()
        log.info("local 3D: sent a copy at 1/%d of the voxels per axis", self.scene.step)
        self._schedule_refine()

    def hide(self) -> None:
        self._watch(None)
        self._cancel_refine()
        self._args = None
        if self.scene.step:
            self.scene.hide()
            self._push()

    def _watch(self, property_node: Any) -> None:
        if self._property_node is not None and self._observer is not None:
            self._property_node.RemoveObserver(self._observer)
        self._property_node, self._observer = property_node, None
        if property_node is not None:
            self._observer = property_node.AddObserver(vtkCommand.ModifiedEvent, lambda *_: self._on_property())

    def _on_property(self) -> None:
        if self._args is not None:
            self._push()  # only the transfer functions changed: the voxels are cached by hash
            self._schedule_refine()

    def _schedule_refine(self) -> None:
        self._cancel_refine()
        if self._args is None or self.scene.refined_step(REFINED_SIDE) >= self.scene.step:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (a volume shown before serving): the first copy stays
        self._refine_handle = loop.call_later(REFINE_AFTER_S, self.refine)

    def _cancel_refine(self) -> None:
        if self._refine_handle is not None:
            self._refine_handle.cancel()
            self._refine_handle = None

    def refine(self) -> None:
        """Send the finer copy (once the user has left the view alone)."""
        self._refine_handle = None
        if self._args is None:
            return
        self.scene.show(*self._args, longest_side=REFINED_SIDE, reset_camera=False)
        self._push()
        log.info("local 3D: refined to 1/%d of the voxels per axis", self.scene.step)
