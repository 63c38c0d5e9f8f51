"""The JSON shapes of the compute API, for validation and for the OpenAPI page."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

#: listings page with SQLite's 64-bit OFFSET: a bigger number is refused as invalid, not a 500
MAX_OFFSET = 2**62


class ItemOut(BaseModel):
    id: str
    kind: Literal["volume", "segmentation", "model", "table", "file"]
    name: str
    path: str = Field(description="Where the file is, relative to the data folder.")
    dimensions: list[int] | None = Field(None, description="Images: [i, j, k] voxels.")
    spacing: list[float] | None = Field(None, description="Images: millimetres per voxel along i, j, k.")
    origin: list[float] | None = Field(None, description="Images: position of the first voxel, LPS millimetres.")
    direction: list[list[float]] | None = Field(None, description="Images: 3x3, columns are the i, j, k axes in LPS.")
    scalar_type: str | None = None
    components: int | None = None
    size: int = Field(description="Bytes.")
    sha256: str
    created: str
    source: dict[str, Any] = Field(description="Where it came from: upload, path or job.")


class ItemPage(BaseModel):
    items: list[ItemOut]
    total: int
    offset: int
    limit: int


class PathRequest(BaseModel):
    path: str = Field(description="A file or DICOM folder, relative to the data folder.")
    kind: Literal["volume", "segmentation", "model", "table", "file"] | None = None
    name: str | None = None
    series_uid: str | None = Field(None, description="DICOM folders with several series: which one.")


class ModuleSummary(BaseModel):
    name: str
    title: str
    category: str
    description: str


class ParameterOut(BaseModel):
    name: str
    type: str = Field(description="The Execution Model tag: image, float, integer-vector, ...")
    channel: Literal["input", "output"]
    label: str
    description: str
    default: Any = None
    constraints: dict[str, float] | None = None
    elements: list[str] | None = None
    flag: str | None = None
    longflag: str | None = None
    index: int | None = None
    multiple: bool = False
    required: bool = False
    subtype: str | None = None
    coordinate_system: str | None = None
    file_extensions: list[str] | None = None
    group: str = ""


class ModuleOut(ModuleSummary):
    version: str = ""
    contributor: str = ""
    documentation_url: str = ""
    license: str = ""
    parameters: list[ParameterOut]


class JobRequest(BaseModel):
    module: str
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Image/file inputs take item ids; file outputs take an optional file name.",
        examples=[{"input": "ITEM_ID", "lower": 200, "upper": 3000}],
    )


class JobOut(BaseModel):
    id: str
    module: str
    parameters: dict[str, Any]
    state: Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
    progress: float
    comment: str | None = None
    log_tail: list[str]
    return_parameters: dict[str, Any]
    outputs: list[str] = Field(description="Item ids of the output files.")
    created: str
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    exit_code: int | None = None


class JobPage(BaseModel):
    jobs: list[JobOut]
    total: int
    offset: int
    limit: int


class Health(BaseModel):
    """Liveness only: it answers without a token, so it names no address, version or engine."""

    status: Literal["ok"]


class ServiceInfo(BaseModel):
    version: str
    engine: dict[str, Any]


class ErrorOut(BaseModel):
    """Every refusal: a sentence for the user (FastAPI's own request validation gives a list)."""

    detail: str | list[dict[str, Any]]


#: what any route may answer besides its success (the token check, limits, missing things, ...)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in {
        400: "The request or the file in it is malformed.",
        401: "No token, or the wrong one.",
        403: "Refused: a path outside the data folder, or a cross-site request.",
        404: "No such item, job or module.",
        409: "Conflicts with the current state.",
        413: "Over a size limit.",
        415: "A file type that this route does not take.",
        422: "A parameter is not valid.",
        503: "Busy or shutting down; try again.",
    }.items()
}
