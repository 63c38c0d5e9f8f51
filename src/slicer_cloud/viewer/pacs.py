"""The viewer's PACS panel: search a DICOMweb server, list a study's series with thumbnails, open a
series slice by slice as its frames arrive, open a DICOM SEG over its series, save the painted
segmentation back as DICOM SEG.

Network calls run in threads (the session's event loop keeps serving the views); VTK and the
scene are touched only on the loop. Browser state holds server names, UIDs and descriptions,
never a server's URL or credentials.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
import traceback

import numpy as np
from trame.widgets import html
from trame.widgets import vuetify3 as v3
from vtkmodules.util.numpy_support import vtk_to_numpy

from slicer_cloud.core.labelmaps import SegmentEntry, labelmap_to_segmentation, segmentation_to_labelmap
from slicer_cloud.core.scene import LoadedVolume, volume_from_array
from slicer_cloud.errors import SlicerCloudError

log = logging.getLogger("slicer_cloud.viewer")

#: how often the views are refreshed while slices arrive
REFRESH_S = 0.3
_FIELDS = ("patient", "patient_id", "date_from", "date_to", "modality", "accession", "description")
_FORM_ARGS = "[sc_pacs_server, " + ", ".join(f"sc_pacs_q_{name}" for name in _FIELDS) + "]"


class PacsPanel:
    """PACS browsing for one viewer session (composed into :class:`~slicer_cloud.viewer.app.ViewerApp`)."""

    def __init__(self, app):
        from slicer_cloud.dicomweb.settings import load_settings

        self.app = app
        self.state = app.state
        self.connections: dict = {}
        self.remote = None  # RemoteSeries of the volume on screen, when it came from a PACS
        self._remote_node = None
        self._cancel: threading.Event | None = None
        # highdicom keeps a SQLite index per SEG, usable only from the thread that made it:
        # every SEG step runs on this one thread.
        self._seg_thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="seg")
        try:
            self.settings = load_settings()
            servers = [s.name for s in self.settings.servers()]
        except SlicerCloudError as error:
            log.warning("DICOMweb servers not available: %s", error.message)
            self.settings, servers = None, []
        s = self.state
        s.sc_pacs_servers = servers
        s.sc_pacs_server = servers[0] if servers else ""
        for name in _FIELDS:  # one state key each: trame sends top-level keys, not nested edits
            s[f"sc_pacs_q_{name}"] = ""
        s.sc_pacs_studies = []
        s.sc_pacs_study = ""
        s.sc_pacs_study_title = ""
        s.sc_pacs_series = []
        s.sc_pacs_searching = False
        s.sc_pacs_progress = 0
        s.sc_pacs_loading = ""
        s.sc_pacs_open = ""  # dicomweb: reference of the series on screen
        s.sc_pacs_saved = ""  # dicomweb: reference of the last SEG saved
        s.sc_pacs_saving = False
        s.sc_pacs_timings = {}

    # -- connections ---------------------------------------------------------------------------
    def connection(self, name: str):
        from slicer_cloud.dicomweb.connection import Connection

        if self.settings is None:
            raise SlicerCloudError("No DICOMweb server is configured (slicer-cloud --pacs NAME=URL, or the settings).")
        if name not in self.connections:
            self.connections[name] = Connection(self.settings.server(name), self.settings)
        return self.connections[name]

    def _fail(self, what: str, error: Exception) -> None:
        if isinstance(error, SlicerCloudError):
            log.info("%s: %s (%s)", what, error.message, error.detail)
            self.app.notify(error.message, "error")
        else:
            log.error("%s\n%s", what, traceback.format_exc())
            self.app.notify(f"{what} failed unexpectedly; the log has the details.", "error")

    # -- search --------------------------------------------------------------------------------
    async def search(self, *values) -> None:
        """Search with the form's values, passed by the click itself (state sync may lag behind it)."""
        from slicer_cloud.dicomweb.search import search_studies

        if len(values) == len(_FIELDS) + 1:
            with self.state:
                self.state.sc_pacs_server = values[0]
            values = values[1:]
        else:
            values = tuple(self.state[f"sc_pacs_q_{name}"] for name in _FIELDS)
        query = {name: str(value or "") for name, value in zip(_FIELDS, values)}
        with self.state:
            self.state.sc_pacs_searching = True
            self.state.sc_pacs_series = []
            self.state.sc_pacs_study = ""
        try:
            conn = self.connection(self.state.sc_pacs_server)
            rows = await asyncio.to_thread(search_studies, conn, **query)
            with self.state:
                self.state.sc_pacs_studies = rows
            if not rows:
                self.app.notify("No study matches the search.", "info")
        except Exception as error:  # noqa: BLE001 - every failure becomes a message
            self._fail("Searching the PACS", error)
        finally:
            with self.state:
                self.state.sc_pacs_searching = False

    async def list_series(self, study: str) -> None:
        from slicer_cloud.dicomweb.reference import SeriesRef
        from slicer_cloud.dicomweb.search import search_series
        from slicer_cloud.dicomweb.thumbnails import thumbnail_data_url

        server = self.state.sc_pacs_server
        with self.state:
            self.state.sc_pacs_study = study
            row = next((r for r in self.state.sc_pacs_studies if r["study"] == study), None)
            self.state.sc_pacs_study_title = f"{row['patient_name']} · {row['date']} · {row['description']}" if row else ""
            self.state.sc_pacs_searching = True
        try:
            conn = self.connection(server)
            rows = await asyncio.to_thread(search_series, conn, study)
            for r in rows:
                r["thumbnail"] = ""
            with self.state:
                self.state.sc_pacs_series = rows
        except Exception as error:  # noqa: BLE001
            self._fail("Listing the series", error)
            return
        finally:
            with self.state:
                self.state.sc_pacs_searching = False

        async def one(index: int, row: dict) -> None:
            if row["modality"] in ("SEG", "SR", "PR", "KO", "RTSTRUCT"):
                return
            try:
                url = await asyncio.to_thread(thumbnail_data_url, conn, SeriesRef(server, study, row["series"]))
            except Exception as error:  # noqa: BLE001 - a missing thumbnail is not worth a message
                log.info("no thumbnail for %s: %s", row["series"], error)
                return
            if self.state.sc_pacs_study == study and index < len(self.state.sc_pacs_series):
                series = list(self.state.sc_pacs_series)
                series[index] = {**series[index], "thumbnail": url}
                with self.state:
                    self.state.sc_pacs_series = series

        await asyncio.gather(*(one(n, r) for n, r in enumerate(rows)))

    # -- opening -------------------------------------------------------------------------------
    async def open_clicked(self, series: str, modality: str) -> None:
        from slicer_cloud.dicomweb.reference import SeriesRef

        ref = SeriesRef(self.state.sc_pacs_server, self.state.sc_pacs_study, series)
        await self.open_reference(str(ref), modality=modality)

    async def open_reference(self, text: str, *, modality: str = "") -> bool:
        """Open ``dicomweb:server/study/series``: a volume slice by slice, or a SEG over its series."""
        from slicer_cloud.dicomweb.reference import parse_reference

        try:
            ref = parse_reference(text)
            self.connection(ref.server)
        except SlicerCloudError as error:
            self.app.notify(error.message, "error")
            return False
        try:
            if modality == "SEG" or await self._is_segmentation(ref):
                return await self._open_segmentation(ref)
            return await self._open_volume(ref)
        except Exception as error:  # noqa: BLE001
            self._fail(f"Opening {ref}", error)
            return False
        finally:
            with self.state:
                self.state.sc_busy = ""
                self.state.sc_pacs_loading = ""

    async def _is_segmentation(self, ref) -> bool:
        from slicer_cloud.dicomweb.search import search_series

        conn = self.connection(ref.server)
        rows = await asyncio.to_thread(search_series, conn, ref.study)
        return any(r["series"] == ref.series and r["modality"] == "SEG" for r in rows)

    async def _open_volume(self, ref, *, wait_for_all: bool = False) -> bool:
        from slicer_cloud.dicomweb import retrieve

        if self._cancel is not None:
            self._cancel.set()  # a series still arriving is abandoned for the new one
        cancel = self._cancel = threading.Event()
        conn = self.connection(ref.server)
        started = time.perf_counter()
        with self.state:
            self.state.sc_busy = "Reading the series from the PACS…"
            self.state.sc_message = ""
            self.state.sc_pacs_progress = 0
        remote = await asyncio.to_thread(retrieve.describe, conn, ref, self.app.limits)
        label = f"{remote.name} ({ref.server})"
        node = volume_from_array(self.app.slicer_app, np.zeros(remote.shape, remote.dtype), remote.info(), name=label)
        image = node.GetImageData()
        target = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(remote.shape)
        count = len(remote.slices)
        arrived: list[int] = []
        loop = asyncio.get_running_loop()
        first = asyncio.Event()

        def on_slice(k: int) -> None:  # worker threads
            arrived.append(k)
            if len(arrived) == 1:
                loop.call_soon_threadsafe(first.set)

        task = asyncio.ensure_future(
            asyncio.to_thread(retrieve.fetch_slices, conn, remote, target, on_slice=on_slice, cancel=cancel)
        )
        waiter = asyncio.ensure_future(first.wait())
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done() and task.exception() is not None:
            self.app.slicer_app.scene.RemoveNode(node)
            raise task.exception()
        if cancel.is_set():
            self.app.slicer_app.scene.RemoveNode(node)
            return False
        image.Modified()
        first_slice_s = time.perf_counter() - started
        self.app.show_volume(LoadedVolume(node=node, info=remote.info()), label=label)
        self.remote, self._remote_node = None, node
        with self.state:
            self.state.sc_pacs_open = str(ref)
        try:
            while not task.done():
                await asyncio.wait([task], timeout=REFRESH_S)
                image.Modified()
                self._render()
                with self.state:
                    self.state.sc_pacs_progress = round(100 * len(arrived) / count)
                    self.state.sc_busy = f"Receiving {label}: {len(arrived)} of {count} slices"
                    self.state.sc_pacs_loading = self.state.sc_busy
            task.result()
        except SlicerCloudError as error:
            if cancel.is_set():
                return False
            with self.state:
                self.state.sc_volume_name = f"{label} (incomplete)"
            raise SlicerCloudError(f"{error.message} The volume on screen is incomplete.", status=error.status, detail=error.detail) from None
        if cancel.is_set():  # another series was opened meanwhile: this one is no longer on screen
            return False
        image.Modified()
        self.app.refresh_window_level()
        self._render()
        self.remote = remote
        total_s = time.perf_counter() - started
        with self.state:
            self.state.sc_pacs_progress = 100
            self.state.sc_pacs_timings = {"first_slice_s": round(first_slice_s, 3), "full_s": round(total_s, 3)}
        log.info("opened %s: first slice %.2f s, all %d slices %.2f s", ref, first_slice_s, count, total_s)
        self.app.notify(f"Opened {label}: {count} slices.", "success")
        return True

    def _render(self) -> None:
        for view in self.app.slicer_app.view_manager.get_views():
            view.schedule_render()

    async def _open_segmentation(self, ref) -> bool:
        from slicer_cloud.dicomweb import seg as segmod

        conn = self.connection(ref.server)
        with self.state:
            self.state.sc_busy = "Reading the segmentation from the PACS…"
        loop = asyncio.get_running_loop()
        seg, source = await loop.run_in_executor(self._seg_thread, segmod.referenced_series, conn, ref)
        if self.remote is None or self.remote.ref != source or self.app.volume is None or self.app.volume.node is not self._remote_node:
            if not await self._open_volume(source):
                return False
        result = await loop.run_in_executor(self._seg_thread, segmod.seg_on_volume, seg, self.remote, ref)
        scene = self.app.slicer_app.scene
        editor = self.app.slicer_app.segmentation_editor
        editor.deactivate_effect()
        for node in list(scene.GetNodesByClass("vtkMRMLSegmentationNode")):
            scene.RemoveNode(node)
        entries = [SegmentEntry(s.number, s.label, s.color) for s in result.segments]
        name = await loop.run_in_executor(self._seg_thread, lambda: str(seg.get("SeriesDescription", "") or "DICOM SEG"))
        labelmap_to_segmentation(self.app.slicer_app, result.labels, self.remote.info(), entries, self.app.volume.node, name=name)
        self.app.segment_editor_logic.on_volume_changed(self.app.volume.node)
        self._render()
        self.app.notify(f"Segmentation {name} ({len(entries)} segments) loaded over {self.app.volume_label}.", "success")
        return True

    # -- saving --------------------------------------------------------------------------------
    async def save(self) -> None:
        from slicer_cloud.dicomweb import seg as segmod

        app = self.app
        node = app.slicer_app.segmentation_editor.active_segmentation_node
        if self.remote is None or app.volume is None or app.volume.node is not self._remote_node:
            app.notify("Save to PACS needs a series opened from the PACS (and fully received).", "warning")
            return
        if node is None or node.GetSegmentation().GetNumberOfSegments() == 0:
            app.notify("Nothing to save: paint a segment first.", "warning")
            return
        remote = self.remote
        with self.state:
            self.state.sc_pacs_saving = True
            self.state.sc_busy = "Saving the segmentation to the PACS…"
        try:
            started = time.perf_counter()
            labels, entries = segmentation_to_labelmap(app.slicer_app, node, app.volume.node)
            segments = [segmod.Segment(e.number, e.name, e.color) for e in entries]
            conn = self.connection(remote.ref.server)
            description = f"Segmentation of {remote.name}"[:64]
            loop = asyncio.get_running_loop()
            dataset = await loop.run_in_executor(
                self._seg_thread, lambda: segmod.build_seg(labels, remote, segments, description=description)
            )
            saved = await loop.run_in_executor(self._seg_thread, segmod.store_seg, conn, dataset, remote.ref)
            took = time.perf_counter() - started
            with self.state:
                self.state.sc_pacs_saved = str(saved)
                self.state.sc_pacs_timings = {**(self.state.sc_pacs_timings or {}), "seg_save_s": round(took, 3)}
            log.info("saved SEG %s (%.2f s)", saved, took)
            app.notify(f"Saved the segmentation to the PACS {remote.ref.server!r} as DICOM SEG ({len(segments)} segments).", "success")
            if self.state.sc_pacs_study == remote.ref.study:
                await self.list_series(remote.ref.study)
        except Exception as error:  # noqa: BLE001
            self._fail("Saving to the PACS", error)
        finally:
            with self.state:
                self.state.sc_pacs_saving = False
                self.state.sc_busy = ""

    # -- UI ------------------------------------------------------------------------------------
    def build(self) -> None:
        with v3.VCard(flat=True, classes="pa-2", id="sc-pacs"):
            with html.Div(v_if=("!sc_pacs_servers.length",), classes="text-body-2"):
                html.Div("No PACS is configured.", classes="text-subtitle-2")
                html.Div("Start with slicer-cloud --pacs NAME=URL view, or set SLICER_CLOUD_DICOMWEB_SERVERS.")
            with html.Div(v_if=("sc_pacs_servers.length",)):
                v3.VSelect(
                    v_model=("sc_pacs_server",), items=("sc_pacs_servers",), label="Server", density="compact",
                    hide_details=True, classes="mb-2", v_if=("sc_pacs_servers.length > 1",), id="sc-pacs-server",
                )
                with v3.VRow(dense=True):
                    for key, title, cols in (("patient", "Patient name", 6), ("patient_id", "Patient ID", 6),
                                             ("date_from", "From", 6), ("date_to", "To", 6),
                                             ("modality", "Modality", 4), ("accession", "Accession", 8),
                                             ("description", "Study description", 12)):
                        with v3.VCol(cols=cols):
                            v3.VTextField(
                                v_model=(f"sc_pacs_q_{key}",), label=title, density="compact", hide_details=True,
                                type="date" if key.startswith("date") else "text", id=f"sc-pacs-{key.replace('_', '-')}",
                                clearable=not key.startswith("date"),
                                keyup_enter=(self.search, _FORM_ARGS),
                            )
                with html.Div(classes="d-flex align-center my-2"):
                    v3.VBtn("Search", prepend_icon="mdi-magnify", click=(self.search, _FORM_ARGS), id="sc-pacs-search",
                            loading=("sc_pacs_searching",), size="small", color="primary")
                    v3.VSpacer()
                    v3.VBtn("Save to PACS", prepend_icon="mdi-cloud-upload", click=self.save, id="sc-pacs-save",
                            loading=("sc_pacs_saving",), size="small", disabled=("!sc_pacs_open",))
                v3.VProgressLinear(model_value=("sc_pacs_progress",), v_if=("sc_pacs_loading",), color="primary",
                                   height=6, id="sc-pacs-progress")
                html.Div("{{ sc_pacs_loading }}", v_if=("sc_pacs_loading",), classes="text-caption")
                with v3.VList(density="compact", id="sc-pacs-studies", v_if=("!sc_pacs_study",)):
                    v3.VListItem(
                        v_for="st in sc_pacs_studies", key="st.study",
                        title=("`${st.patient_name || '(no name)'} · ${st.date}`",),
                        subtitle=("`${st.description || '(no description)'} · ${st.modalities} · ${st.series_count} series, ${st.instance_count} images`",),
                        click=(self.list_series, "[st.study]"), classes="sc-pacs-study", prepend_icon="mdi-folder-account",
                    )
                with html.Div(v_if=("sc_pacs_study",), id="sc-pacs-series-panel"):
                    with html.Div(classes="d-flex align-center"):
                        v3.VBtn(icon="mdi-arrow-left", size="small", variant="text", click="sc_pacs_study = ''",
                                id="sc-pacs-back", title="Back to the studies")
                        html.Div("{{ sc_pacs_study_title }}", classes="text-subtitle-2 text-truncate")
                    with v3.VList(density="compact", id="sc-pacs-series"):
                        with v3.VListItem(
                            v_for="se in sc_pacs_series", key="se.series",
                            title=("se.description || '(no description)'",),
                            subtitle=("`${se.modality} · ${se.instances} image${se.instances === 1 ? '' : 's'}`",),
                            click=(self.open_clicked, "[se.series, se.modality]"), classes="sc-pacs-series-item",
                        ):
                            with v3.Template(v_slot_prepend=True):
                                html.Img(src=("se.thumbnail",), v_if=("se.thumbnail",), width=48, height=48,
                                         classes="mr-3 sc-pacs-thumb", style="object-fit: cover; border-radius: 4px;")
                                v3.VIcon("mdi-layers-outline", v_if=("!se.thumbnail && se.modality === 'SEG'",), classes="mr-3")
                                v3.VIcon("mdi-image-outline", v_if=("!se.thumbnail && se.modality !== 'SEG'",), classes="mr-3")
