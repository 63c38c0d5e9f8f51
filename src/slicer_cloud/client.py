"""A Python client for the compute API (``slicer-cloud api``).

    from slicer_cloud.client import Client

    api = Client("http://127.0.0.1:8000", token="...")
    scan = api.upload("ct.nrrd")
    job = api.run("threshold", {"input": scan["id"], "lower": 200, "upper": 3000})
    stats = api.run("segment_statistics", {"segmentation": job["outputs"][0]})
    print(stats["return_parameters"]["total_volume_ml"], "mL")
    api.download(job["outputs"][0], "mask.nii.gz", format="nii.gz")

Every error the service reports comes back as :class:`~slicer_cloud.errors.SlicerCloudError`
with its message and HTTP status.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store.atomic import atomic_output

FINAL_STATES = ("succeeded", "failed", "cancelled", "interrupted")
Progress = Callable[[dict[str, Any]], None]


class JobFailed(SlicerCloudError):
    """A job ended in another state than ``succeeded``; ``job`` holds its last state."""

    def __init__(self, job: dict[str, Any]):
        super().__init__(f"Job {job['id']} ({job['module']}) {job['state']}: {job.get('error') or 'no reason given'}", status=422)
        self.job = job


class Client:
    def __init__(self, url: str, token: str | None = None, *, timeout_s: float = 120.0):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------
    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        try:
            detail = response.json().get("detail")
        except (ValueError, AttributeError):
            detail = None
        if isinstance(detail, list):  # FastAPI's own validation errors
            detail = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}" for d in detail)
        raise SlicerCloudError(str(detail or response.text or response.reason_phrase), status=response.status_code)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._check(self._http.request(method, path, **kwargs)).json()

    # -- service -------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self._json("GET", "/api/health")

    def info(self) -> dict[str, Any]:
        """The service's version and job engine (needs the token)."""
        return self._json("GET", "/api/info")

    # -- items ---------------------------------------------------------------------------------
    def upload(self, path: str | Path, *, kind: str | None = None) -> dict[str, Any]:
        """Upload a file (streamed from disk); the new item."""
        path = Path(path)
        with open(path, "rb") as handle:
            params = {"kind": kind} if kind else None
            return self._json("POST", "/api/items", files={"file": (path.name, handle)}, params=params)

    def register(self, path: str, *, kind: str | None = None, series_uid: str | None = None) -> dict[str, Any]:
        """Register a file or DICOM folder that is already in the server's data folder."""
        body = {k: v for k, v in {"path": path, "kind": kind, "series_uid": series_uid}.items() if v is not None}
        return self._json("POST", "/api/items", json=body)

    def items(self, kind: str | None = None, *, page_size: int = 200) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            params = {"offset": offset, "limit": page_size, **({"kind": kind} if kind else {})}
            page = self._json("GET", "/api/items", params=params)
            yield from page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return

    def item(self, item_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/items/{item_id}")

    def delete_item(self, item_id: str) -> None:
        self._check(self._http.delete(f"/api/items/{item_id}"))

    def download(self, item_id: str, target: str | Path, *, format: str | None = None) -> Path:
        """Stream an item's file to ``target`` (complete or not at all)."""
        target = Path(target)
        params = {"format": format} if format else None
        with self._http.stream("GET", f"/api/items/{item_id}/file", params=params) as response:
            if not response.is_success:
                response.read()
                self._check(response)
            with atomic_output(target) as tmp, open(tmp, "wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
        return target

    def slice_png(self, item_id: str, **options: Any) -> bytes:
        return self._check(self._http.get(f"/api/items/{item_id}/slice.png", params=options)).content

    def render_png(self, item_id: str, **options: Any) -> bytes:
        return self._check(self._http.get(f"/api/items/{item_id}/render.png", params=options)).content

    # -- modules -------------------------------------------------------------------------------
    def modules(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/modules")

    def module(self, name: str) -> dict[str, Any]:
        return self._json("GET", f"/api/modules/{name}")

    # -- jobs ----------------------------------------------------------------------------------
    def submit(self, module: str, parameters: dict[str, Any] | None = None, *, idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._json("POST", "/api/jobs", json={"module": module, "parameters": parameters or {}}, headers=headers)

    def job(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/jobs/{job_id}")

    def jobs(self, *, state: str | None = None, module: str | None = None, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        params = {k: v for k, v in {"state": state, "module": module, "offset": offset, "limit": limit}.items() if v is not None}
        return self._json("GET", "/api/jobs", params=params)

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._json("DELETE", f"/api/jobs/{job_id}")

    def events(self, job_id: str, *, timeout_s: float | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """The job's server-sent events as (event, data) until its ``end`` event."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._http.stream("GET", f"/api/jobs/{job_id}/events", timeout=httpx.Timeout(self._http.timeout.connect, read=30.0)) as response:
            if not response.is_success:
                response.read()
                self._check(response)
            event, data = "message", []
            for line in response.iter_lines():
                if deadline is not None and time.monotonic() > deadline:
                    raise SlicerCloudError(f"Job {job_id} did not finish within {timeout_s:g} s.", status=504)
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    payload = json.loads("\n".join(data))
                    yield event, payload
                    if event == "end":
                        return
                    event, data = "message", []

    def wait(self, job_id: str, *, timeout_s: float | None = None, progress: Progress | None = None) -> dict[str, Any]:
        """Wait for the job to end (following its event stream); its final state."""
        for event, payload in self.events(job_id, timeout_s=timeout_s):
            if progress is not None and event in ("progress", "state"):
                progress(payload)
            if event == "end":
                return payload
        return self.job(job_id)  # pragma: no cover - the stream closed early

    def run(self, module: str, parameters: dict[str, Any] | None = None, *, timeout_s: float | None = None,
            progress: Progress | None = None, check: bool = True) -> dict[str, Any]:
        """Submit and wait; raises :class:`JobFailed` unless it succeeded (``check=False``: returns it)."""
        job = self.wait(self.submit(module, parameters)["id"], timeout_s=timeout_s, progress=progress)
        if check and job["state"] != "succeeded":
            raise JobFailed(job)
        return job
