"""The compute API's DICOMweb routes: search the configured servers, register a series as an
item, store a label map item as DICOM SEG next to its series.

Retrieval and SEG writing run in the inspection pool (worker processes), like every other
parsing of untrusted data; the routes only answer names, UIDs and item records.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from slicer_cloud.errors import SlicerCloudError

router = APIRouter(prefix="/api/dicomweb", tags=["dicomweb"])


class SeriesItemRequest(BaseModel):
    reference: str = Field(description="dicomweb:SERVER/STUDY_UID/SERIES_UID")
    name: str | None = Field(None, description="Item name (default: the series description).")


class SegExportRequest(BaseModel):
    item: str = Field(description="A label map item (e.g. a job's output) on the series' voxel grid.")
    reference: str | None = Field(
        None, description="The series it segments (dicomweb:SERVER/STUDY/SERIES). Default: the DICOMweb series the job that made the item ran on."
    )
    description: str | None = None


def _svc(request: Request):
    return request.app.state.service


@router.get("/servers")
def servers() -> list[dict[str, str]]:
    """The configured DICOMweb servers, by name (URLs and credentials stay on the server)."""
    from slicer_cloud.dicomweb.settings import load_settings

    return [s.public() for s in load_settings().servers()]


@router.get("/studies")
def studies(server: str, patient: str = "", patient_id: str = "", date_from: str = "", date_to: str = "",
            modality: str = "", accession: str = "", description: str = "", limit: int = 50) -> list[dict[str, Any]]:
    """QIDO-RS study search on ``server``."""
    from slicer_cloud.dicomweb import connect
    from slicer_cloud.dicomweb.search import search_studies

    return search_studies(connect(server), limit=max(1, limit), patient=patient, patient_id=patient_id, date_from=date_from,
                          date_to=date_to, modality=modality, accession=accession, description=description)


@router.get("/recent")
def recent(limit: int = 10) -> list[dict[str, Any]]:
    """The newest studies of every configured server (for the portal); a server that fails
    gives a row with its error instead of failing the list."""
    from slicer_cloud.dicomweb import connect
    from slicer_cloud.dicomweb.search import search_studies
    from slicer_cloud.dicomweb.settings import load_settings

    settings = load_settings()
    limit = max(1, min(limit, 50))
    rows: list[dict[str, Any]] = []
    for server in settings.servers():
        try:
            found = search_studies(connect(server.name, settings))
        except SlicerCloudError as error:
            rows.append({"server": server.name, "error": error.message})
            continue
        rows += found[:limit]
    return rows


@router.get("/studies/{study}/series")
def series(server: str, study: str) -> list[dict[str, Any]]:
    from slicer_cloud.dicomweb import connect
    from slicer_cloud.dicomweb.search import search_series

    return search_series(connect(server), study)


@router.post("/items", status_code=201)
async def register_series(request: Request, body: SeriesItemRequest) -> dict[str, Any]:
    """Register a DICOMweb series as a volume item (fetched, checked and converted to NRRD)."""
    from slicer_cloud.compute.api import _item
    from slicer_cloud.dicomweb import compute as dw
    from slicer_cloud.dicomweb.reference import parse_reference
    from slicer_cloud.store.items import safe_name

    service = _svc(request)
    ref = parse_reference(body.reference)
    name = safe_name(body.name or f"{ref.server}-{ref.series[-16:]}") + ".nrrd"
    item_id, target = service.store.new_item_path(name)
    try:
        meta = await service.inspect_pool.run(dw.import_series, str(ref), str(target), service.limits.model_dump())
        meta.pop("series", None)
        item = _item(item_id, name, service.store.relative(target), True, meta, {"type": "dicomweb", "reference": str(ref)})
        service.store.add(item)
    except BaseException:
        service.store.discard_folder(item_id)
        raise
    return item.to_json()


@router.post("/seg")
async def export_seg(request: Request, body: SegExportRequest) -> dict[str, Any]:
    """Store a label map item as DICOM SEG (STOW-RS) in the study of the series it segments."""
    from slicer_cloud.dicomweb import compute as dw
    from slicer_cloud.dicomweb.reference import parse_reference

    service = _svc(request)
    item = service.store.get(body.item)
    if item.kind not in ("volume", "segmentation"):
        raise SlicerCloudError(f"Item {item.id} is a {item.kind}; only label maps can be stored as DICOM SEG.", status=422)
    reference = body.reference or _source_series(service, item)
    ref = parse_reference(reference)
    stored = await service.inspect_pool.run(
        dw.export_task, str(service.store.absolute(item)), str(ref), body.description or item.name, service.limits.model_dump()
    )
    return {"item": item.id, "source": str(ref), "reference": stored}


def _source_series(service, item) -> str:
    """The DICOMweb series a job output was computed from (the job's input items tell)."""
    source = item.source or {}
    if source.get("type") == "dicomweb":
        raise SlicerCloudError("This item is the series itself; store a label map computed from it.", status=422)
    if source.get("type") == "job":
        job = service.manager.get(source["job"])
        found = set()
        for value in job.parameters.values():
            for candidate in (value if isinstance(value, list) else [value]):
                item_id = candidate.get("item") if isinstance(candidate, dict) else candidate
                if not isinstance(item_id, str):
                    continue
                try:
                    parent = service.store.get(item_id)
                except SlicerCloudError:
                    continue
                if (parent.source or {}).get("type") == "dicomweb":
                    found.add(parent.source["reference"])
        if len(found) == 1:
            return found.pop()
    raise SlicerCloudError("Which series does this label map segment? Give reference: dicomweb:SERVER/STUDY/SERIES.", status=422)

