"""The viewer of one browser session: Slicer's scene, views streamed to the browser, the UI.

Composed from trame-slicer's public components (SlicerApp, remote-controlled views, layout
manager, segment editor, markups and volume property panels) plus what this project adds:
opening files from the server's data folder, DICOM series picking, window/level presets, a
volume rendering switch, reduced-quality 3D while dragging, saving segmentations back to the data
folder, and messages instead of silent failures.

One :class:`ViewerApp` lives in one session process (see ``session.py``): its scene, layout and
view sizes belong to that browser tab alone.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
import traceback
from pathlib import Path

import slicer_cloud.core.vtk_env  # noqa: F401  (must precede the VTK imports)
from trame.app import TrameApp
from trame.ui.vuetify3 import SinglePageWithDrawerLayout
from trame.widgets import html
from trame.widgets import vuetify3 as v3
from trame_slicer import module as trame_slicer_module
from trame_slicer.app.logic import MarkupsButtonLogic, SegmentEditorLogic, VolumePropertyLogic
from trame_slicer.app.ui import MarkupsButton, SegmentEditorUI, SegmentEditorUndoRedoUI, VolumePropertyUI
from trame_slicer.core import LayoutManager, SlicerApp
from trame_slicer.app.ui import create_vertical_slice_view_gutter_ui, create_vertical_view_gutter_ui
from trame_slicer.rca_view.rca_view_factory import RemoteSliceViewFactory, RemoteThreeDViewFactory
from trame_slicer.segmentation import SegmentationEffectNoTool
from trame_slicer.views import ThreeDView
from vtkmodules.vtkCommonCore import vtkCommand

from slicer_cloud.config import Limits, ViewerSettings
from slicer_cloud.core import dicom, images
from slicer_cloud.core.presets import WINDOW_PRESET_TITLES, WINDOW_PRESETS, looks_like_ct, window_level
from slicer_cloud.core.scene import LoadedVolume, load_segmentation, load_volume
from slicer_cloud.core.vtk_output import quiet_vtk
from slicer_cloud.dicomweb.reference import is_reference
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store import DataRoot, atomic_output
from slicer_cloud.viewer.interaction import lighten_drags
from slicer_cloud.viewer.layouts import DEFAULT_LAYOUT, LAYOUT_ICONS, LAYOUT_TITLES, view_layouts
from slicer_cloud.viewer.listing import list_data_files
from slicer_cloud.viewer.local3d import Local3DController, LocalVolumeScene, server_has_gpu
from slicer_cloud.viewer.pacs import PacsPanel
from slicer_cloud.viewer.staging import discard_staged, resolve_staged

log = logging.getLogger("slicer_cloud.viewer")

STATIC_DIR = Path(__file__).parent / "static"
UPLOADS_DIR = "uploads"
SEGMENTATIONS_DIR = "segmentations"
#: 3D quality while the user drags the view: Slicer's adaptive ray casting aims at this frame rate.
INTERACTIVE_3D_FPS = 8.0
#: seconds an info or success message stays before it fades
MESSAGE_FADE_S = 8.0


class ViewerApp(TrameApp):
    """One browser session's viewer."""

    def __init__(self, server=None, *, settings: ViewerSettings, limits: Limits | None = None, gateway_base: str = "/"):
        super().__init__(server, client_type="vue3")
        self.settings = settings
        self.limits = limits or Limits()
        self.data_root = DataRoot(settings.data_dir)
        self.gateway_base = gateway_base
        self.volume: LoadedVolume | None = None
        self.volume_label = ""
        #: the DICOM folder whose series the page lists: (folder, label, series uids)
        self._series_choice: tuple[Path, str, set[str]] | None = None

        self.server.enable_module(trame_slicer_module)
        self.server.enable_module(
            {"serve": {"__slicer_cloud": str(STATIC_DIR)}, "scripts": ["__slicer_cloud/viewer.js"]}
        )

        self.slicer_app = SlicerApp()
        quiet_vtk()  # after SlicerApp, which installs an output window printing to stderr
        self.local_scene = LocalVolumeScene()
        self.local_views: list = []
        self.local_3d = Local3DController(self.local_scene, self._push_local_scene)
        self._server_gpu: bool | None = None
        # Views not under the mouse refresh at a low rate so the one in use gets the CPU.
        factory_options = dict(interactive_quality=settings.jpeg_quality_interactive, target_fps=30.0, blur_fps=3.0)
        self._slice_factory = RemoteSliceViewFactory(
            self.server, populate_view_ui_f=create_vertical_slice_view_gutter_ui, **factory_options
        )
        self._threed_factory = RemoteThreeDViewFactory(self.server, populate_view_ui_f=self._threed_view_ui, **factory_options)
        self.slicer_app.view_manager.register_factory(self._slice_factory)
        self.slicer_app.view_manager.register_factory(self._threed_factory)
        self.layout_manager = LayoutManager(self.slicer_app.scene, self.slicer_app.view_manager, self.server)
        self.layout_manager.register_layout_dict(view_layouts())

        self.segment_editor_logic = SegmentEditorLogic(self.server, self.slicer_app)
        self.volume_property_logic = VolumePropertyLogic(self.server, self.slicer_app)
        self.markups_logic = MarkupsButtonLogic(self.server, self.slicer_app)

        self._init_state()
        self.pacs = PacsPanel(self)
        self._build_ui()
        self.layout_manager.set_layout(DEFAULT_LAYOUT)
        self._watch_views()
        self.set_mouse_mode(self.state.sc_mouse_mode)

    # -- state -----------------------------------------------------------------------------
    def _init_state(self) -> None:
        s = self.state
        s.trame__title = "slicer-cloud viewer"
        s.sc_files = []
        s.sc_data_root = str(self.data_root.root)
        s.sc_message = ""
        s.sc_message_type = "info"
        s.sc_busy = ""
        s.sc_volume_name = ""
        s.sc_is_ct = False
        s.sc_layout = DEFAULT_LAYOUT
        s.sc_layouts = [{"value": k, "title": v, "icon": LAYOUT_ICONS[k]} for k, v in LAYOUT_TITLES.items()]
        s.sc_wl_presets = [{"value": k, "title": WINDOW_PRESET_TITLES[k]} for k in [*WINDOW_PRESETS, "auto"]]
        s.sc_vr_on = False
        s.sc_webgl2 = False  # told by the page once it has checked its browser
        s.sc_3d_local = False  # the user's (or the automatic) choice of 3D in the browser
        s.sc_3d_mode = "server"  # what the 3D view does now: "server" or "local" (browser renders)
        s.sc_series = []
        s.sc_saved_path = ""
        s.sc_saved_url = ""
        s.sc_panel = "data"
        s.sc_drawer = True
        s.sc_mouse_mode = "window_level"
        s.sc_mouse_modes = [
            {"value": "window_level", "icon": "mdi-contrast-box", "title": "Left drag adjusts window/level"},
            {"value": "view", "icon": "mdi-cursor-move", "title": "Left drag only rotates the 3D view"},
        ]
        self.state.change("sc_mouse_mode")(lambda sc_mouse_mode, **_: self.set_mouse_mode(sc_mouse_mode))

        self.state.change("sc_layout")(self._on_layout_changed)
        self.state.change("sc_vr_on")(self._on_vr_changed)
        self.state.change("sc_webgl2")(self._on_webgl2)
        self.state.change("sc_3d_local")(lambda **_: self._update_3d_mode())
        ctrl = self.server.controller
        ctrl.trigger("sc_upload_started")(self._on_upload_started)
        ctrl.trigger("sc_open_upload")(self.open_upload)
        ctrl.trigger("sc_upload_failed")(self._on_upload_failed)
        self.refresh_files()

    def notify(self, text: str, kind: str = "info") -> None:
        """Show a message over the views. Errors and warnings stay until closed; others fade."""
        with self.state:
            self.state.sc_message = text
            self.state.sc_message_type = kind
        if kind in ("info", "success"):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            loop.call_later(MESSAGE_FADE_S, self._fade_message, text)

    def _fade_message(self, text: str) -> None:
        if self.state.sc_message == text:
            with self.state:
                self.state.sc_message = ""

    def refresh_files(self) -> None:
        self.state.sc_files = list_data_files(self.data_root)

    # -- opening data ----------------------------------------------------------------------
    async def open_async(self, path: Path, *, label: str, series_uid: str | None = None) -> bool:
        """Open a volume, DICOM folder or segmentation; report problems in the page."""
        with self.state:
            self.state.sc_busy = f"Opening {label}…"
            self.state.sc_message = ""
        await asyncio.sleep(0)  # let the busy indicator reach the browser before the load blocks
        try:
            self._open(path, label=label, series_uid=series_uid)
            log.info("opened %s", label)
            return True
        except SlicerCloudError as error:
            log.info("could not open %s: %s", label, error.message)
            self.notify(error.message, "error")
        except Exception:  # a Slicer/VTK failure we did not foresee: say so (details to the log), keep serving
            log.error("unexpected failure opening %s\n%s", label, traceback.format_exc())
            self.notify(f"Could not open {label}: the file could not be read (the reason is in the server's log).", "error")
        finally:
            with self.state:
                self.state.sc_busy = ""
        return False

    def _open(self, path: Path, *, label: str, series_uid: str | None) -> None:
        if path.is_dir() and series_uid is None:
            series = dicom.find_series(path, self.limits)
            if not series:
                raise SlicerCloudError(f"{label} holds no DICOM image series.")
            if len(series) > 1:
                # kept here, not in the page's state: a browser can write state, and this folder
                # may be one the operator named outside the data folder
                self._series_choice = (path, label, {s.uid for s in series})
                with self.state:
                    self.state.sc_series = [
                        {
                            "uid": s.uid,
                            "title": f"{s.description or 'Unnamed series'} — {s.modality}, "
                            f"{s.columns}x{s.rows}x{len(s.files)}",
                        }
                        for s in series
                    ]
                self.notify(f"{label} holds {len(series)} series: pick one.", "info")
                return
            series_uid = series[0].uid
        kind = images.image_kind(path)
        if kind == "segmentation":
            self._open_segmentation(path, label=label)
            return
        self.show_volume(load_volume(self.slicer_app, path, self.limits, series_uid=series_uid, name=label), label=label)

    def show_volume(self, loaded: LoadedVolume, *, label: str) -> None:
        """Put a loaded volume on screen in place of the current one."""
        self._replace_volume(loaded)
        self.volume_label = label
        with self.state:
            self.state.sc_volume_name = label
            self.state.sc_series = []

    def _open_segmentation(self, path: Path, *, label: str) -> None:
        if self.volume is None:
            raise SlicerCloudError(f"Open a volume first: {label} is a segmentation and is shown over a volume.")
        editor = self.slicer_app.segmentation_editor
        for node in list(self.slicer_app.scene.GetNodesByClass("vtkMRMLSegmentationNode")):
            self.slicer_app.scene.RemoveNode(node)
        node = load_segmentation(self.slicer_app, path, self.volume.node, self.limits)
        editor.deactivate_effect()
        self.segment_editor_logic.on_volume_changed(self.volume.node)
        self.notify(f"Segmentation {label} loaded over {self.volume_label}.", "success")
        log.info("segmentation %s: %d segments", label, node.GetSegmentation().GetNumberOfSegments())

    def _replace_volume(self, loaded: LoadedVolume) -> None:
        scene = self.slicer_app.scene
        self.slicer_app.segmentation_editor.deactivate_effect()
        for cls in ("vtkMRMLSegmentationNode", "vtkMRMLMarkupsNode"):
            for node in list(scene.GetNodesByClass(cls)):
                scene.RemoveNode(node)
        if self.volume is not None:
            vr = self.slicer_app.volume_rendering.get_vr_display_node(self.volume.node)
            if vr is not None:
                scene.RemoveNode(vr)
            scene.RemoveNode(self.volume.node)
        self.volume = loaded
        node = loaded.node
        for view in self.slicer_app.view_manager.get_slice_views():
            view.set_background_volume_id(node.GetID())
            view.set_foreground_volume_id(None)
            view.set_visible_in_3d(not self.state.sc_vr_on)
        self.refresh_window_level(initial=True)
        self.local_3d.hide()
        if self.state.sc_vr_on:
            self._show_volume_rendering(True)
        self.segment_editor_logic.on_volume_changed(node)
        self.volume_property_logic.on_volume_changed(node)
        self._fit_all_views()

    def refresh_window_level(self, *, initial: bool = False) -> None:
        """CT window for CT-like values, automatic otherwise (again once a volume has fully arrived)."""
        if self.volume is None:
            return
        node = self.volume.node
        is_ct = looks_like_ct(node.GetImageData().GetScalarRange())
        display = node.GetDisplayNode()
        if is_ct and (initial or not self.state.sc_is_ct):
            display.AutoWindowLevelOff()
            display.SetWindowLevel(*WINDOW_PRESETS["ct-abdomen"])
        elif not is_ct:
            display.AutoWindowLevelOff()
            display.AutoWindowLevelOn()  # recomputed from the values there now
        with self.state:
            self.state.sc_is_ct = is_ct

    async def open_relative(self, relative: str, series_uid: str | None = None) -> bool:
        if is_reference(relative):  # ?open=dicomweb:SERVER/STUDY/SERIES
            return await self.pacs.open_reference(relative)
        try:
            path = self.data_root.resolve(relative)
        except SlicerCloudError as error:
            self.notify(error.message, "error")
            return False
        return await self.open_async(path, label=relative, series_uid=series_uid)

    # -- uploads ---------------------------------------------------------------------------
    def _on_upload_started(self, name: str, size: int) -> None:
        limit = self.limits.max_upload_bytes
        with self.state:
            self.state.sc_message = ""
            self.state.sc_busy = f"Uploading {name} ({size / 1024**2:.1f} MiB)…"
        if size > limit:
            self.notify(f"{name} is larger than the upload limit of {limit / 1024**2:.0f} MiB.", "error")

    def _on_upload_failed(self, name: str, reason: str) -> None:
        with self.state:
            self.state.sc_busy = ""
        self.notify(f"Upload of {name} failed: {reason}", "error")

    async def open_upload(self, staged: str, name: str) -> None:
        """Check a staged upload, move it into the data folder and open it; a bad file is removed.
        ``staged`` comes from the browser: only a staged file is ever touched (see staging)."""
        try:
            staged_path = resolve_staged(self.data_root, staged)
        except SlicerCloudError as error:
            with self.state:
                self.state.sc_busy = ""
            self.notify(f"{name} was not stored: {error.message}", "error")
            return
        try:
            images.inspect_image(staged_path, self.limits)
        except SlicerCloudError as error:
            discard_staged(staged_path)
            with self.state:
                self.state.sc_busy = ""
            self.notify(f"{name} was not stored: {error.message}", "error")
            return
        target_dir = self.data_root.root / UPLOADS_DIR
        target_dir.mkdir(exist_ok=True)
        target = _free_name(target_dir, Path(name).name)
        shutil.move(str(staged_path), str(target))
        discard_staged(staged_path)
        self.refresh_files()
        relative = self.data_root.relative(target)
        if await self.open_async(target, label=relative):
            self.notify(f"Uploaded {name} to {relative}.", "success")

    # -- saving ----------------------------------------------------------------------------
    def save_segmentation(self) -> None:
        editor = self.slicer_app.segmentation_editor
        node = editor.active_segmentation_node
        if self.volume is None or node is None:
            self.notify("Nothing to save: open a volume and paint a segment first.", "warning")
            return
        if node.GetSegmentation().GetNumberOfSegments() == 0:
            self.notify("Nothing to save: the segmentation has no segments.", "warning")
            return
        stem = Path(self.volume_label).name.split(".")[0] or "segmentation"
        target = self.data_root.root / SEGMENTATIONS_DIR / f"{stem}.seg.nrrd"
        try:
            with atomic_output(target) as tmp:
                editor.export_segmentation_to_file(node, str(tmp))
                if not tmp.exists() or tmp.stat().st_size == 0:
                    raise SlicerCloudError("Slicer wrote no segmentation file.", status=500)
        except SlicerCloudError as error:
            self.notify(f"Saving failed: {error.message}", "error")
            return
        except OSError as error:
            self.notify(f"Saving failed: {error.strerror}", "error")
            return
        relative = self.data_root.relative(target)
        self.refresh_files()
        with self.state:
            self.state.sc_saved_path = relative
            self.state.sc_saved_url = f"{self.gateway_base}api/download?path={relative}"
        self.notify(f"Saved segmentation to {relative}.", "success")

    # -- display ---------------------------------------------------------------------------
    def apply_window_preset(self, preset: str) -> None:
        if self.volume is None:
            return
        display = self.volume.node.GetDisplayNode()
        values = window_level(preset)
        if values is None:
            display.AutoWindowLevelOn()
        else:
            display.AutoWindowLevelOff()
            display.SetWindowLevel(*values)

    def set_mouse_mode(self, mode: str) -> None:
        """Left drag in slice views: window/level (Slicer's AdjustWindowLevel) or rotate/pan only."""
        node = self.slicer_app.markups_logic.interaction_node
        if node is None:
            return
        wanted = node.AdjustWindowLevel if mode == "window_level" else node.ViewTransform
        if node.GetCurrentInteractionMode() in (node.AdjustWindowLevel, node.ViewTransform):
            node.SetCurrentInteractionMode(wanted)

    def _on_layout_changed(self, sc_layout: str, **_) -> None:
        if sc_layout in LAYOUT_TITLES:
            self.layout_manager.set_layout(sc_layout)
            self._watch_views()
            self._fit_all_views()

    def _on_vr_changed(self, sc_vr_on: bool, **_) -> None:
        self._show_volume_rendering(bool(sc_vr_on))
        if not sc_vr_on:
            self.local_3d.hide()
            with self.state:
                self.state.sc_3d_mode = "server"

    def _show_volume_rendering(self, on: bool) -> None:
        if self.volume is None:
            return
        vr = self.slicer_app.volume_rendering
        node = self.volume.node
        # With a segment editor tool active after a stroke, trame-slicer's 3D effect pipeline keeps
        # a freshly switched-on volume rendering from drawing: put the tool down, and say so.
        editor = self.slicer_app.segmentation_editor
        if on and editor.active_effect is not None and editor.active_effect_name != SegmentationEffectNoTool.get_effect_name():
            editor.deactivate_effect()
            self.notify("Volume rendering is on; the segment editor tool was put down (pick it again to edit).")
        self._set_volume_rendering(vr, node, on)

    # -- 3D in the browser -----------------------------------------------------------------
    def _on_webgl2(self, sc_webgl2: bool, **_) -> None:
        choice = self.settings.local_3d
        if choice == "auto":
            local = bool(sc_webgl2) and not self.server_gpu()
        else:
            local = choice == "on"
        with self.state:
            self.state.sc_3d_local = local
        self._update_3d_mode()

    def server_gpu(self) -> bool:
        if self._server_gpu is None:
            views = self.slicer_app.view_manager.get_threed_views()
            self._server_gpu = bool(views) and server_has_gpu(views[0].render_window())
            log.info("server renders 3D on %s", "a GPU" if self._server_gpu else "the CPU")
        return self._server_gpu

    def local_3d_active(self) -> bool:
        s = self.state
        return bool(s.sc_3d_local and s.sc_webgl2 and s.sc_vr_on) and self.volume is not None

    def _update_3d_mode(self) -> None:
        """Volume rendering in the browser or on the server, never both at once."""
        local = self.local_3d_active()
        with self.state:
            self.state.sc_3d_mode = "local" if local else "server"
        if self.volume is not None and self.state.sc_vr_on:
            self._set_volume_rendering(self.slicer_app.volume_rendering, self.volume.node, True)

    def _push_local_scene(self) -> None:
        for view in self.local_views:
            view.update()

    def _set_volume_rendering(self, vr, node, on: bool) -> None:
        display = vr.get_vr_display_node(node)
        if display is None:
            if not on:
                return
            preset = "CT-Chest-Contrast-Enhanced" if self.state.sc_is_ct else "MR-Default"
            display = vr.create_display_node(node, preset)
        display.SetViewNodeIDs([v.get_view_node_id() for v in self.slicer_app.view_manager.get_threed_views()])
        local = on and self.local_3d_active()
        # In local mode the browser renders: the server's copy stays hidden (and costs nothing),
        # its display node still holds the preset and shift the Display panel edits.
        display.SetVisibility(on and not local)
        with self.state:
            self.state.sc_3d_mode = "local" if local else "server"
        if local:
            self.local_3d.show(node.GetImageData(), _ijk_to_ras(node), display.GetVolumePropertyNode())
        else:
            self.local_3d.hide()
        # Slice planes in 3D would hide the rendered volume: show them only without it.
        for view in self.slicer_app.view_manager.get_slice_views():
            view.set_visible_in_3d(not on)
        self.volume_property_logic.on_volume_changed(node)
        for view in self.slicer_app.view_manager.get_threed_views():
            if on and view._sc_auto_fit:
                view.fit_view_to_content()  # frame the rendered volume, not the slice planes
            view.schedule_render()

    # -- views: fit on first size, lighter 3D while dragging -------------------------------
    def _watch_views(self) -> None:
        for view in self.slicer_app.view_manager.get_views():
            if getattr(view, "_sc_watched", False):
                continue
            view._sc_watched = True
            view._sc_auto_fit = True
            interactor = view.interactor()
            view.render_window().AddObserver(vtkCommand.WindowResizeEvent, lambda *_a, v=view: self._on_view_resized(v))
            for event in (
                vtkCommand.LeftButtonPressEvent,
                vtkCommand.RightButtonPressEvent,
                vtkCommand.MiddleButtonPressEvent,
            ):
                interactor.AddObserver(event, lambda *_a, v=view: setattr(v, "_sc_auto_fit", False))
            if isinstance(view, ThreeDView):
                self._configure_interactive_3d(view)
                rca_view = self._threed_factory.get_factory_view(view.get_singleton_tag())
                lighten_drags(rca_view.view_adapter, on_drag_start=lambda v=view: setattr(v, "_sc_auto_fit", False))

    def _on_view_resized(self, view) -> None:
        # A view's real size arrives from the browser after the volume may already be loaded:
        # fit again until the user zooms or pans, so the first frames are never wrongly zoomed.
        if view._sc_auto_fit and self.volume is not None:
            self._fit_view(view)

    @staticmethod
    def _fit_view(view) -> None:
        view.fit_view_to_content()  # slices: fit the background volume; 3D: reset the camera
        view.schedule_render()

    def _fit_all_views(self) -> None:
        for view in self.slicer_app.view_manager.get_views():
            view._sc_auto_fit = True
            self._fit_view(view)

    @staticmethod
    def _configure_interactive_3d(view: ThreeDView) -> None:
        view_node = view.get_view_node()
        if view_node is not None:
            # Adaptive: the ray caster lowers its sample distance and image resolution while the
            # interactor asks for a high update rate (dragging), full quality when it stops.
            view_node.SetVolumeRenderingQuality(view_node.Adaptive)
            view_node.SetExpectedFPS(INTERACTIVE_3D_FPS)
        interactor = view.interactor()
        interactor.SetDesiredUpdateRate(INTERACTIVE_3D_FPS)
        interactor.SetStillUpdateRate(0.001)
        window = view.render_window()
        started = [0.0]

        def on_start(*_):
            started[0] = time.perf_counter()

        def on_end(*_):
            log.debug("3D frame %.3f s at desired rate %.3f", time.perf_counter() - started[0], window.GetDesiredUpdateRate())

        window.AddObserver(vtkCommand.StartEvent, on_start)
        window.AddObserver(vtkCommand.EndEvent, on_end)

    # -- UI --------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        with SinglePageWithDrawerLayout(self.server, full_height=True, theme="dark") as layout:
            self.ui = layout
            layout.title.set_text("Slicer")
            layout.drawer.width = 340
            layout.drawer.v_model = ("sc_drawer",)
            with layout.toolbar:
                layout.toolbar.density = "compact"
                v3.VSpacer()
                html.Div("{{ sc_volume_name }}", classes="text-caption mx-2", id="sc-volume-name")
                with v3.VBtnToggle(
                    v_model=("sc_layout",), mandatory=True, density="compact", classes="mx-1", divided=True, variant="outlined"
                ):
                    v3.VBtn(
                        icon=("l.icon",),
                        v_for="l in sc_layouts",
                        key="l.value",
                        value=("l.value",),
                        size="small",
                        title=("l.title",),
                        id=("`sc-layout-${l.value}`",),
                    )
                with v3.VBtnToggle(density="compact", classes="mx-1", divided=True, variant="outlined"):
                    v3.VBtn(
                        "{{ p.title }}",
                        v_for="p in sc_wl_presets",
                        key="p.value",
                        size="small",
                        click=(self.apply_window_preset, "[p.value]"),
                        id=("`sc-wl-${p.value}`",),
                    )
                with v3.VBtnToggle(v_model=("sc_mouse_mode",), density="compact", classes="mx-1", variant="outlined"):
                    v3.VBtn(
                        v_for="m in sc_mouse_modes",
                        key="m.value",
                        value=("m.value",),
                        icon=("m.icon",),
                        title=("m.title",),
                        size="small",
                        id=("`sc-mode-${m.value}`",),
                    )
                v3.VSwitch(
                    v_model=("sc_vr_on",),
                    label="3D rendering",
                    density="compact",
                    hide_details=True,
                    color="primary",
                    classes="mx-2",
                    id="sc-vr-switch",
                )
                v3.VSwitch(
                    v_model=("sc_3d_local",),
                    v_show=("sc_webgl2",),
                    label="in browser",
                    title="Render 3D in this browser (WebGL2) instead of on the server",
                    density="compact",
                    hide_details=True,
                    color="primary",
                    classes="mx-2",
                    id="sc-local-3d-switch",
                )
                MarkupsButton()
                v3.VBtn("Save", prepend_icon="mdi-content-save", click=self.save_segmentation, id="sc-save", classes="mx-1")
                with v3.VBtn(prepend_icon="mdi-upload", classes="mx-1", tag="label", id="sc-upload"):
                    html.Span("Upload")
                    html.Input(type="file", id="sc-upload-input", style="display:none")

            with layout.drawer:
                with v3.VTabs(v_model=("sc_panel",), density="compact", grow=True):
                    v3.VTab("Data", value="data")
                    v3.VTab("PACS", value="pacs", id="sc-tab-pacs")
                    v3.VTab("Segment", value="segment")
                    v3.VTab("Display", value="display")
                with v3.VWindow(v_model=("sc_panel",)):
                    with v3.VWindowItem(value="data"):
                        self._data_panel()
                    with v3.VWindowItem(value="pacs"):
                        self.pacs.build()
                    with v3.VWindowItem(value="segment"):
                        self._segment_panel()
                    with v3.VWindowItem(value="display"):
                        self._display_panel()

            with layout.content:
                with html.Div(style="position: relative; width: 100%; height: 100%;"):
                    v3.VProgressLinear(indeterminate=True, v_if=("sc_busy",), absolute=True, color="primary")
                    v3.VAlert(
                        text=("sc_message",),
                        type=("sc_message_type",),
                        v_if=("sc_message",),
                        closable=True,
                        density="compact",
                        id="sc-message",
                        style="position: absolute; top: 8px; left: 50%; transform: translateX(-50%); z-index: 10; max-width: 80%;",
                        click_close="sc_message = ''",
                    )
                    html.Div(
                        "{{ sc_busy }}",
                        v_if=("sc_busy",),
                        id="sc-busy",
                        style="position: absolute; bottom: 8px; left: 8px; z-index: 10;",
                        classes="text-caption",
                    )
                    self.layout_manager.initialize_layout_grid(layout)

    def _threed_view_ui(self, server, view_id: str, slicer_view) -> None:
        """The 3D view's extras: the browser-rendered volume over the streamed image (local mode)."""
        from trame.widgets import vtk as vtk_widgets

        with html.Div(
            v_if=("sc_3d_mode === 'local'",),
            id="sc-local-3d",
            style="position: absolute; top: 0; left: 0; width: 100%; height: 100%; background: black;",
        ):
            view = vtk_widgets.VtkLocalView(
                self.local_scene.window, style="width: 100%; height: 100%;"
            )
            self.local_views.append(view)
        create_vertical_view_gutter_ui(server, view_id, slicer_view)

    def _data_panel(self) -> None:
        with v3.VCard(flat=True, classes="pa-2"):
            with html.Div(classes="d-flex align-center"):
                html.Div("Files in the data folder", classes="text-subtitle-2")
                v3.VSpacer()
                v3.VBtn(icon="mdi-refresh", size="small", variant="text", click=self.refresh_files, id="sc-refresh")
            with v3.VList(density="compact", id="sc-file-list"):
                v3.VListItem(
                    v_for="f in sc_files",
                    key="f.path",
                    title=("f.path",),
                    subtitle=("f.note",),
                    prepend_icon=("f.icon",),
                    click=(self.open_relative, "[f.path]"),
                    classes="sc-file",
                )
                v3.VListItem(
                    v_if="!sc_files.length",
                    title="No images here yet: upload one, or start with --data DIR.",
                )
            with html.Div(v_if=("sc_series.length",), classes="mt-2", id="sc-series-picker"):
                html.Div("Pick a DICOM series", classes="text-subtitle-2")
                with v3.VList(density="compact"):
                    v3.VListItem(
                        v_for="s in sc_series",
                        key="s.uid",
                        title=("s.title",),
                        click=(self._open_series, "[s.uid]"),
                        classes="sc-series",
                    )
            with html.Div(v_if=("sc_saved_url",), classes="mt-2"):
                html.A(
                    "Download {{ sc_saved_path }}",
                    href=("sc_saved_url",),
                    download=True,
                    id="sc-download",
                )

    async def _open_series(self, uid: str) -> None:
        if self._series_choice is None or uid not in self._series_choice[2]:
            self.notify("Pick one of the series listed.", "error")
            return
        folder, label, _ = self._series_choice
        await self.open_async(folder, label=label, series_uid=uid)

    def _segment_panel(self) -> None:
        # Undo/redo needs the editor built first; CSS order puts it above the editor.
        with html.Div(classes="d-flex flex-column", style="height: calc(100vh - 112px);"):
            with html.Div(style="flex: 1 1 auto; min-height: 0; order: 2;"):
                self.segment_editor_ui = SegmentEditorUI()
            with html.Div(classes="d-flex align-center px-3 pt-2", style="order: 1;", id="sc-undo-redo"):
                html.Div("Segment editor", classes="text-subtitle-2")
                v3.VSpacer()
                SegmentEditorUndoRedoUI(editor_ui=self.segment_editor_ui, row=True)
        self.segment_editor_logic.set_ui(self.segment_editor_ui)

    def _display_panel(self) -> None:
        ui = VolumePropertyUI()
        self.volume_property_logic.set_ui(ui)


def _ijk_to_ras(node):
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    matrix = vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return matrix


def _free_name(folder: Path, name: str) -> Path:
    """``name`` in ``folder``, or ``stem-1.ext``, ``stem-2.ext``... when taken."""
    target = folder / name
    if not target.exists():
        return target
    stem, dot, suffix = name.partition(".")
    for n in range(1, 10_000):
        target = folder / f"{stem}-{n}{dot}{suffix}"
        if not target.exists():
            return target
    raise SlicerCloudError("Too many files with that name in the uploads folder.", status=409)
