"""Offscreen rendering of Slicer views to PNG bytes: slices and 3D volume rendering.

Uses slicer-core's own displayable managers (the same code that draws Slicer's views) through
trame-slicer's view classes, with a direct (synchronous) render strategy and an EGL render
window, so it needs no display. One :class:`OffscreenRenderer` per process; it caches the last
volumes it loaded, keyed by path and modification time.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import slicer_cloud.core.vtk_env  # noqa: F401  (must precede the VTK imports)
from trame_slicer.views import DirectViewFactory, ViewLayoutDefinition
from trame_slicer.views.threed_view import ViewDirection
from vtkmodules.vtkIOImage import vtkPNGWriter
from vtkmodules.vtkRenderingCore import vtkRenderWindow, vtkWindowToImageFilter

from slicer_cloud.config import Limits
from slicer_cloud.core import presets
from slicer_cloud.core.presets import WINDOW_PRESETS, window_level
from slicer_cloud.core.scene import LoadedVolume, load_volume, new_slicer_app
from slicer_cloud.errors import SlicerCloudError

ORIENTATIONS = {"axial": "Axial", "coronal": "Coronal", "sagittal": "Sagittal"}
VIEW_DIRECTIONS = {d.name.lower(): d for d in ViewDirection}
MAX_SIZE = 4096

__all__ = [
    "ORIENTATIONS",
    "VIEW_DIRECTIONS",
    "WINDOW_PRESETS",
    "OffscreenRenderer",
    "capture_png",
    "render_slice",
    "render_volume",
    "volume_preset_names",
]


def capture_png(render_window: vtkRenderWindow) -> bytes:
    """The current content of a render window as PNG bytes."""
    grab = vtkWindowToImageFilter()
    grab.SetInput(render_window)
    grab.ReadFrontBufferOff()
    grab.Update()
    writer = vtkPNGWriter()
    writer.SetWriteToMemory(True)
    writer.SetInputConnection(grab.GetOutputPort())
    writer.Write()
    return bytes(memoryview(writer.GetResult()))


def _check_size(size: int) -> int:
    if not 16 <= int(size) <= MAX_SIZE:
        raise SlicerCloudError(f"size must be between 16 and {MAX_SIZE} pixels.", status=422)
    return int(size)


class OffscreenRenderer:
    """A Slicer scene with one slice view and one 3D view that render offscreen."""

    def __init__(self, limits: Limits | None = None, cache_size: int = 2):
        self.limits = limits or Limits()
        self.app = new_slicer_app()
        self.app.view_manager.register_factory(DirectViewFactory(do_render_offscreen=True))
        self._slice_view = self.app.view_manager.create_view(ViewLayoutDefinition.axial_view())
        self._threed_view = self.app.view_manager.create_view(ViewLayoutDefinition.threed_view())
        self._threed_view.set_box_visible(False)
        self._cache: OrderedDict[tuple[str, int, str | None], LoadedVolume] = OrderedDict()
        self._cache_size = cache_size

    # -- loading ---------------------------------------------------------------------------
    def load(self, path: Path, *, series_uid: str | None = None) -> LoadedVolume:
        """Load (or reuse) the volume at ``path``."""
        path = Path(path)
        try:
            key = (str(path.resolve()), path.stat().st_mtime_ns, series_uid)
        except OSError:
            raise SlicerCloudError(f"No such file: {path.name}", status=404) from None
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        loaded = load_volume(self.app, path, self.limits, series_uid=series_uid)
        self._cache[key] = loaded
        while len(self._cache) > self._cache_size:
            _, old = self._cache.popitem(last=False)
            self.app.scene.RemoveNode(old.node)
        return loaded

    # -- slices ----------------------------------------------------------------------------
    def slice_png(
        self,
        volume: LoadedVolume,
        *,
        orientation: str = "axial",
        index: int | None = None,
        offset: float | None = None,
        window: float | None = None,
        level: float | None = None,
        preset: str | None = None,
        size: int = 512,
    ) -> bytes:
        """One slice of ``volume`` as PNG. ``index`` counts slices from the first; ``offset`` is
        the slice position in millimetres along the view normal; neither: the middle slice."""
        size = _check_size(size)
        if orientation not in ORIENTATIONS:
            raise SlicerCloudError(f"orientation must be one of {', '.join(ORIENTATIONS)}.", status=422)
        view = self._slice_view
        view.set_orientation(ORIENTATIONS[orientation])
        view.set_background_volume_id(volume.node.GetID())
        view.set_foreground_volume_id(None)
        view.render_window().SetSize(size, size)
        view.fit_view_to_content()
        low, high = view.get_slice_range()
        step = view.get_slice_step() or 1.0
        count = int(round((high - low) / step)) + 1
        if index is not None:
            if not 0 <= index < count:
                raise SlicerCloudError(f"index must be between 0 and {count - 1} for {orientation} slices.", status=422)
            offset = low + index * step
        elif offset is not None:
            if not low - step / 2 <= offset <= high + step / 2:
                raise SlicerCloudError(f"offset must be between {low:.1f} and {high:.1f} mm.", status=422)
        else:
            offset = low + (count // 2) * step
        view.set_slice_value(offset)
        self._apply_window_level(volume, window=window, level=level, preset=preset)
        view.render()
        return capture_png(view.render_window())

    @staticmethod
    def _apply_window_level(volume: LoadedVolume, *, window, level, preset) -> None:
        display = volume.node.GetDisplayNode()
        if preset is not None:
            values = window_level(preset)
            if values is None:
                display.AutoWindowLevelOn()
                return
            window, level = values
        if window is None and level is None:
            display.AutoWindowLevelOn()
            return
        if window is None or level is None:
            raise SlicerCloudError("Give both window and level, or a preset.", status=422)
        if window <= 0:
            raise SlicerCloudError("window must be positive.", status=422)
        display.AutoWindowLevelOff()
        display.SetWindowLevel(float(window), float(level))

    # -- 3D --------------------------------------------------------------------------------
    def volume_png(self, volume: LoadedVolume, *, preset: str | None = None, view: str = "anterior", size: int = 512) -> bytes:
        """A volume rendering of ``volume`` seen from ``view`` (anterior, posterior, left, ...)."""
        size = _check_size(size)
        if view not in VIEW_DIRECTIONS:
            raise SlicerCloudError(f"view must be one of {', '.join(VIEW_DIRECTIONS)}.", status=422)
        vr = self.app.volume_rendering
        if preset is None:
            scalar_range = volume.node.GetImageData().GetScalarRange()
            preset = presets.DEFAULT_VOLUME_PRESET if presets.looks_like_ct(scalar_range) else presets.DEFAULT_MR_VOLUME_PRESET
        if preset not in vr.preset_names():
            raise SlicerCloudError(f"Unknown volume rendering preset {preset!r}.", status=422)
        threed = self._threed_view
        threed.render_window().SetSize(size, size)
        for other in self._cache.values():
            display = vr.get_vr_display_node(other.node)
            if display is not None and other is not volume:
                display.SetVisibility(False)
        display = vr.create_display_node(volume.node, preset)
        vr.apply_preset(display, preset)
        display.SetViewNodeIDs([threed.get_view_node_id()])
        display.SetVisibility(True)
        threed.reset_focal_point()
        threed.reset_camera()
        threed.rotate_to_view_direction(VIEW_DIRECTIONS[view])
        threed.reset_camera()
        threed.render()
        return capture_png(threed.render_window())


_renderer: OffscreenRenderer | None = None
_renderer_pid: int | None = None


def _shared_renderer(limits: Limits | None) -> OffscreenRenderer:
    # One renderer per process: a forked worker must not reuse its parent's GL context.
    global _renderer, _renderer_pid
    if _renderer is None or _renderer_pid != os.getpid():
        _renderer = OffscreenRenderer(limits)
        _renderer_pid = os.getpid()
    elif limits is not None:
        _renderer.limits = limits
    return _renderer


def render_slice(
    path: Path,
    *,
    orientation: str = "axial",
    index: int | None = None,
    offset: float | None = None,
    window: float | None = None,
    level: float | None = None,
    preset: str | None = None,
    size: int = 512,
    limits: Limits | None = None,
    series_uid: str | None = None,
) -> bytes:
    """A slice of the volume at ``path`` as PNG bytes (see :meth:`OffscreenRenderer.slice_png`)."""
    renderer = _shared_renderer(limits)
    volume = renderer.load(path, series_uid=series_uid)
    return renderer.slice_png(
        volume, orientation=orientation, index=index, offset=offset, window=window, level=level, preset=preset, size=size
    )


def render_volume(
    path: Path,
    *,
    preset: str | None = None,
    view: str = "anterior",
    size: int = 512,
    limits: Limits | None = None,
    series_uid: str | None = None,
) -> bytes:
    """A 3D volume rendering of the volume at ``path`` as PNG bytes."""
    renderer = _shared_renderer(limits)
    volume = renderer.load(path, series_uid=series_uid)
    return renderer.volume_png(volume, preset=preset, view=view, size=size)


def volume_preset_names() -> list[str]:
    """Slicer's volume rendering presets (CT-AAA, CT-Bone, MR-Default, ...)."""
    return [name for name in _shared_renderer(None).app.volume_rendering.preset_names() if name != "SubjectHierarchy"]
