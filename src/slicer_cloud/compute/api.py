"""The compute API: FastAPI routes over the item store, the module registry and the job engine.

Start it with ``slicer-cloud api``; the OpenAPI page is at ``/docs``. Every route but
``/api/health`` needs the token (``Authorization: Bearer TOKEN``). Files sent by users are
parsed in worker processes (:mod:`slicer_cloud.compute.workers`), never in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, Query, Request, Response, Security
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, StreamingResponse
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles

from slicer_cloud import __version__
from slicer_cloud.compute import inspect as worker_tasks
from slicer_cloud.compute.auth import TokenMiddleware
from slicer_cloud.compute.jobs.spec import FINAL_STATES
from slicer_cloud.compute.schemas import ERROR_RESPONSES, MAX_OFFSET, Health, ItemOut, ItemPage, JobOut, JobPage, JobRequest, ModuleOut, ModuleSummary, PathRequest, ServiceInfo
from slicer_cloud.compute.service import ComputeService
from slicer_cloud.compute.settings import ComputeSettings
from slicer_cloud.compute.upload import SMALL_BODY_BYTES, read_small_body, upload_body_limit
from slicer_cloud.config import Limits
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store.index import Item, new_id
from slicer_cloud.store.items import safe_name
from slicer_cloud.web.disposition import content_disposition

log = logging.getLogger(__name__)

VOLUME_FORMATS = {"nrrd": ".nrrd", "nii.gz": ".nii.gz", "nii": ".nii", "mha": ".mha"}
MODEL_FORMATS = {"stl": ".stl", "obj": ".obj", "vtp": ".vtp", "vtk": ".vtk", "ply": ".ply", "gltf": ".gltf", "glb": ".glb"}
_SSE_KEEPALIVE_S = 15.0
_DOCS_ASSETS = "/docs-assets"


def _swagger_static_dir() -> Path | None:
    try:
        import swagger_ui

        folder = Path(swagger_ui.__file__).parent / "static"
        return folder if (folder / "swagger-ui-bundle.js").exists() else None
    except ImportError:
        return None


def _svc(request: Request) -> ComputeService:
    return request.app.state.service


def create_app(settings: ComputeSettings, token: str, limits: Limits | None = None, service: ComputeService | None = None) -> FastAPI:
    """The ASGI app. ``token`` '' means no check (loopback only, see slicer_cloud.security).
    ``service``: already started parts (the command starts them first, so that a bad option
    fails before the server listens); None: they start with the app."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = service or await asyncio.to_thread(ComputeService.start, settings, limits)
        try:
            yield
        finally:
            await asyncio.to_thread(app.state.service.close)

    bearer = HTTPBearer(auto_error=False, description="The token printed by slicer-cloud api.")
    app = FastAPI(
        title="slicer-cloud compute API",
        version=__version__,
        description=(
            "Upload scans, run Slicer Execution Model CLI modules on them as jobs, and fetch the results. "
            "Every route but /api/health needs `Authorization: Bearer TOKEN`."
        ),
        lifespan=lifespan,
        max_body_size=SMALL_BODY_BYTES,  # JSON bodies; the upload route has its own, larger limit
        docs_url=None,
        redoc_url=None,
        dependencies=[Security(bearer)],  # shows the lock in /docs; the middleware enforces it
        responses=ERROR_RESPONSES,  # documented, so that clients (and schema checks) expect them
    )
    app.add_middleware(TokenMiddleware, token=token, port=settings.port, session_ttl_s=settings.session_cookie_ttl_s)

    @app.exception_handler(SlicerCloudError)
    async def _user_error(_request: Request, error: SlicerCloudError) -> JSONResponse:
        if error.detail:
            log.info("%s (%s)", error.message, error.detail)
        return JSONResponse({"detail": error.message}, status_code=error.status)

    static = _swagger_static_dir()
    if static is not None:
        app.mount(_DOCS_ASSETS, StaticFiles(directory=static), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        if static is None:
            return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=app.title,
            swagger_js_url=f"{_DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{_DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{_DOCS_ASSETS}/favicon-32x32.png",
        )

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    # -- health ------------------------------------------------------------------------------
    @app.get("/api/health", response_model=Health, tags=["service"])
    def health() -> dict[str, Any]:
        """Answers without a token, for load balancers and start-up checks: liveness only (no
        address, version or engine, which would help whoever probes the machine)."""
        return {"status": "ok"}

    @app.get("/api/info", response_model=ServiceInfo, tags=["service"])
    def info(request: Request) -> dict[str, Any]:
        """The version and where jobs run (engine, workers, scheduler address)."""
        return {"version": __version__, "engine": _svc(request).engine.describe()}

    # -- items -------------------------------------------------------------------------------
    @app.post(
        "/api/items",
        max_body_size=upload_body_limit((limits or (service.limits if service else Limits())).max_upload_bytes),
        status_code=201,
        response_model=ItemOut,
        tags=["items"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}, "required": ["file"]}
                    },
                    "application/json": {"schema": PathRequest.model_json_schema()},
                },
            }
        },
    )
    async def add_item(
        request: Request,
        kind: Annotated[Literal["volume", "segmentation", "model", "table", "file"] | None, Query(description="Upload: what the file is (default: from its name).")] = None,
    ) -> dict[str, Any]:
        """Upload a file (multipart, field ``file``) or register a file or DICOM folder of the
        data folder (JSON ``{"path": ...}``). Images are checked (headers, sizes) before they are
        stored; a file that is not what it claims is refused and nothing is kept."""
        service = _svc(request)
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                body = PathRequest.model_validate_json(await read_small_body(request))
            except ValueError as error:
                raise SlicerCloudError(f"Expected JSON like {{\"path\": \"scans/ct.nrrd\"}}: {error}", status=422) from None
            item = await _register_path(service, body)
            return item.to_json()
        received = await _receive(service, request)
        kind = kind or received.fields.get("kind") or None
        try:
            meta = await _describe_upload(service, received.path, received.filename, kind)
        except SlicerCloudError:
            received.path.unlink(missing_ok=True)
            raise
        item_id, target = service.store.new_item_path(received.filename)
        os.replace(received.path, target)
        item = _item(item_id, received.filename, service.store.relative(target), True, meta, {"type": "upload", "filename": received.filename})
        try:
            service.store.add(item)
        except BaseException:
            service.store.discard_folder(item_id)
            raise
        return item.to_json()

    @app.get("/api/items", response_model=ItemPage, tags=["items"])
    def list_items(
        request: Request,
        kind: Literal["volume", "segmentation", "model", "table", "file"] | None = None,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> dict[str, Any]:
        service = _svc(request)
        limit = min(limit, service.settings.max_page)
        items, total = service.store.index.list(kind=kind, offset=offset, limit=limit)
        return {"items": [i.to_json() for i in items], "total": total, "offset": offset, "limit": limit}

    @app.get("/api/items/{item_id}", response_model=ItemOut, tags=["items"])
    def get_item(request: Request, item_id: str) -> dict[str, Any]:
        return _svc(request).store.get(item_id).to_json()

    @app.delete("/api/items/{item_id}", status_code=204, tags=["items"])
    def delete_item(request: Request, item_id: str) -> Response:
        """Removes the item; its file too when the store owns it (uploads, job outputs)."""
        _svc(request).store.delete(item_id)
        return Response(status_code=204)

    @app.get("/api/items/{item_id}/file", tags=["items"], response_class=FileResponse)
    async def download_item(
        request: Request,
        item_id: str,
        format: Annotated[str | None, Query(description="Volumes: nrrd, nii.gz, nii, mha. Models: stl, obj, vtp, vtk, ply, gltf, glb.")] = None,
    ) -> FileResponse:
        """The item's file, converted on the fly (in a worker) when another format is asked."""
        service = _svc(request)
        item = service.store.get(item_id)
        path = service.store.absolute(item)
        if format is None or item.name.lower().endswith("." + format.lower()):
            return FileResponse(path, headers={"Content-Disposition": content_disposition(item.name)})
        table = VOLUME_FORMATS if item.kind in ("volume", "segmentation") else MODEL_FORMATS if item.kind == "model" else {}
        suffix = table.get(format.lower())
        if suffix is None:
            offered = ", ".join(table) or "none (it is served as stored)"
            raise SlicerCloudError(f"A {item.kind} item can be downloaded as: {offered}.", status=422)
        target = service.cache_dir / f"{item.id}-{item.sha256[:12]}{suffix}"
        if not target.exists():
            service.cache_dir.mkdir(parents=True, exist_ok=True)
            if item.kind == "model":
                await service.inspect_pool.run(worker_tasks.convert_model, str(path), str(target), service.limits.model_dump())
            else:
                await service.inspect_pool.run(worker_tasks.convert_volume, str(path), str(target), service.limits.model_dump())
        name = _with_suffix(item.name, suffix)
        return FileResponse(target, headers={"Content-Disposition": content_disposition(name)})

    # -- renders -----------------------------------------------------------------------------
    @app.get("/api/items/{item_id}/slice.png", tags=["renders"], response_class=Response,
             responses={200: {"content": {"image/png": {}}}})
    async def slice_png(
        request: Request,
        item_id: str,
        orientation: Literal["axial", "coronal", "sagittal"] = "axial",
        index: Annotated[int | None, Query(ge=0, description="Slice number (default: the middle).")] = None,
        offset: Annotated[float | None, Query(description="Slice position in mm along the view normal, instead of index.")] = None,
        window: Annotated[float | None, Query(gt=0)] = None,
        level: float | None = None,
        preset: Annotated[str | None, Query(description="A window/level preset, e.g. ct-abdomen, ct-bone, ct-lung.")] = None,
        size: Annotated[int, Query(ge=16, le=2048)] = 512,
    ) -> Response:
        """A slice rendered by Slicer's slice logic (offscreen, in a worker process)."""
        service = _svc(request)
        item = _image_item(service, item_id)
        if index is not None and offset is not None:
            raise SlicerCloudError("Give index or offset, not both.", status=422)
        options = {"orientation": orientation, "index": index, "offset": offset, "window": window, "level": level,
                   "preset": preset, "size": size}
        png = await service.render_pool.run(worker_tasks.render_slice_png, str(service.store.absolute(item)), options, service.limits.model_dump())
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})

    @app.get("/api/items/{item_id}/render.png", tags=["renders"], response_class=Response,
             responses={200: {"content": {"image/png": {}}}})
    async def render_png(
        request: Request,
        item_id: str,
        preset: Annotated[str | None, Query(description="A Slicer volume rendering preset, e.g. CT-Bone, CT-Chest-Contrast-Enhanced, MR-Default.")] = None,
        view: Literal["anterior", "posterior", "left", "right", "superior", "inferior"] = "anterior",
        size: Annotated[int, Query(ge=16, le=2048)] = 512,
    ) -> Response:
        """A 3D volume rendering (CPU ray casting in a worker process: seconds, not milliseconds)."""
        service = _svc(request)
        item = _image_item(service, item_id)
        options = {"preset": preset, "view": view, "size": size}
        png = await service.render_pool.run(worker_tasks.render_volume_png, str(service.store.absolute(item)), options, service.limits.model_dump())
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})

    # -- modules -----------------------------------------------------------------------------
    from slicer_cloud.compute.dicomweb_api import router as dicomweb_router

    app.include_router(dicomweb_router)  # /api/dicomweb/...: PACS search, series as items, SEG out

    @app.get("/api/modules", response_model=list[ModuleSummary], tags=["modules"])
    def list_modules(request: Request) -> list[dict[str, Any]]:
        return [entry.descriptor.summary() for entry in _svc(request).registry.entries()]

    @app.get("/api/modules/{name}", response_model=ModuleOut, tags=["modules"])
    def get_module(request: Request, name: str) -> dict[str, Any]:
        """The module's parameters, as its Execution Model descriptor declares them."""
        return _svc(request).registry.get(name).descriptor.to_json()

    @app.get("/api/modules/{name}/xml", tags=["modules"], response_class=Response,
             responses={200: {"content": {"application/xml": {}}}})
    def get_module_xml(request: Request, name: str) -> Response:
        return Response(_svc(request).registry.get(name).descriptor.xml, media_type="application/xml")

    # -- jobs --------------------------------------------------------------------------------
    @app.post("/api/jobs", status_code=202, response_model=JobOut, tags=["jobs"],
              responses={200: {"description": "The job first submitted with this Idempotency-Key.", "model": JobOut}})
    def submit_job(
        request: Request,
        body: JobRequest,
        idempotency_key: Annotated[str | None, Header(description="Resubmitting with the same key returns the first job.")] = None,
    ) -> Response:
        job, created = _svc(request).manager.submit(body.module, body.parameters, idempotency_key)
        return JSONResponse(job.to_json(), status_code=202 if created else 200,
                            headers={"Location": f"/api/jobs/{job.id}"})

    @app.get("/api/jobs", response_model=JobPage, tags=["jobs"])
    def list_jobs(
        request: Request,
        state: Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"] | None = None,
        module: str | None = None,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> dict[str, Any]:
        service = _svc(request)
        limit = min(limit, service.settings.max_page)
        jobs, total = service.manager.jobs.list(state=state, module=module, offset=offset, limit=limit)
        return {"jobs": [j.to_json() for j in jobs], "total": total, "offset": offset, "limit": limit}

    @app.get("/api/jobs/{job_id}", response_model=JobOut, tags=["jobs"])
    def get_job(request: Request, job_id: str) -> dict[str, Any]:
        return _svc(request).manager.get(job_id).to_json()

    @app.delete("/api/jobs/{job_id}", response_model=JobOut, tags=["jobs"])
    def cancel_job(request: Request, job_id: str) -> dict[str, Any]:
        """Cancels a queued or running job (its whole process tree ends); answers when it has."""
        manager = _svc(request).manager
        manager.cancel(job_id)
        return manager.wait(job_id, timeout_s=15.0).to_json()

    @app.get("/api/jobs/{job_id}/events", tags=["jobs"], response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}}})
    async def job_events(request: Request, job_id: str) -> StreamingResponse:
        """Server-sent events: ``state``, ``progress``, ``log``, and ``end`` (the final job), then the stream closes."""
        manager = _svc(request).manager
        queue = manager.subscribe(job_id)
        try:
            job = await asyncio.to_thread(manager.get, job_id)
        except SlicerCloudError:
            manager.unsubscribe(job_id, queue)
            raise

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield _sse("state", job.to_json())
                if job.state in FINAL_STATES:
                    yield _sse("end", job.to_json())
                    return
                while True:
                    try:
                        event, data = await asyncio.wait_for(queue.get(), timeout=_SSE_KEEPALIVE_S)
                    except asyncio.TimeoutError:
                        if await request.is_disconnected():
                            return
                        latest = await asyncio.to_thread(manager.get, job_id)
                        if latest.state in FINAL_STATES:  # missed while subscribing
                            yield _sse("end", latest.to_json())
                            return
                        yield b": keep-alive\n\n"
                        continue
                    yield _sse(event, data)
                    if event == "end":
                        return
            finally:
                manager.unsubscribe(job_id, queue)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app


# --- helpers ---------------------------------------------------------------------------------
def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _with_suffix(name: str, suffix: str) -> str:
    lower = name.lower()
    for known in (".nii.gz", ".seg.nrrd", *VOLUME_FORMATS.values(), *MODEL_FORMATS.values()):
        if lower.endswith(known):
            return name[: -len(known)] + suffix
    return name + suffix


def _item(item_id: str, name: str, path: str, owned: bool, meta: dict[str, Any], source: dict[str, Any]) -> Item:
    meta = dict(meta)
    return Item(
        id=item_id, kind=meta.pop("kind"), name=name, path=path, owned=owned, size=meta.pop("size"),
        sha256=meta.pop("sha256"), source=source, **{k: meta.get(k) for k in Item._META},
    )


def _image_item(service: ComputeService, item_id: str) -> Item:
    item = service.store.get(item_id)
    if item.kind not in ("volume", "segmentation"):
        raise SlicerCloudError(f"Item {item_id} is a {item.kind}; only volumes and segmentations are rendered.", status=422)
    return item


async def _receive(service: ComputeService, request: Request):
    from slicer_cloud.compute.upload import receive_upload

    return await receive_upload(
        request, service.staging_dir, service.limits.max_upload_bytes, service.limits.max_upload_parts
    )


async def _describe_upload(service: ComputeService, staged: Path, filename: str, kind: str | None) -> dict[str, Any]:
    # The staged file has a random name; readers judge formats by suffix, so link the real name.
    named = staged.with_name(f"{staged.stem}-{filename}")
    os.link(staged, named)
    try:
        return await service.inspect_pool.run(worker_tasks.describe_file, str(named), kind, False, service.limits.model_dump())
    finally:
        named.unlink(missing_ok=True)


async def _register_path(service: ComputeService, body: PathRequest) -> Item:
    path = service.store.data.resolve(body.path)
    relative = service.store.data.relative(path)
    if path.is_dir():
        name = safe_name(body.name or path.name) + ".nrrd"
        item_id, target = service.store.new_item_path(name)
        try:
            meta = await service.inspect_pool.run(worker_tasks.import_dicom, str(path), str(target), body.series_uid, service.limits.model_dump())
            source = {"type": "path", "path": relative, "dicom_series": meta.pop("series_uid"), "series": meta.pop("series")}
            item = _item(item_id, name, service.store.relative(target), True, meta, source)
            service.store.add(item)
        except BaseException:
            service.store.discard_folder(item_id)
            raise
        return item
    meta = await service.inspect_pool.run(worker_tasks.describe_file, str(path), body.kind, False, service.limits.model_dump())
    item = _item(new_id(), body.name and safe_name(body.name) or path.name, relative, False, meta, {"type": "path", "path": relative})
    service.store.add(item)
    return item
