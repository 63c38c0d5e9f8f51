"""Receiving an upload: the multipart body is parsed as it arrives and the ``file`` part goes
straight to disk (never whole in memory), atomically, stopped with a 413 at the size limit."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store.atomic import atomic_output
from slicer_cloud.store.items import safe_name

_FIELD_LIMIT = 4096
#: after the limit is passed, read (and drop) this much more so the client sees the 413 answer
_DRAIN_LIMIT = 64 * 1024 * 1024


@dataclass
class ReceivedFile:
    path: Path
    filename: str
    size: int
    sha256: str
    fields: dict[str, str] = field(default_factory=dict)


class _Parts:
    """Collects the multipart callbacks; file data is handed to the writer chunk by chunk."""

    def __init__(self) -> None:
        self.headers: dict[str, bytes] = {}
        self._field = b""
        self._value = b""
        self.name: str | None = None
        self.filename: str | None = None
        self.pending: list[tuple[str, object]] = []
        self.fields: dict[str, str] = {}
        self._buffer = b""

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda data, start, end: setattr(self, "_field", self._field + data[start:end]),
            "on_header_value": lambda data, start, end: setattr(self, "_value", self._value + data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self.headers, self.name, self.filename, self._buffer = {}, None, None, b""

    def _header_end(self) -> None:
        self.headers[self._field.decode("latin-1").lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_done(self) -> None:
        _, options = parse_options_header(self.headers.get("content-disposition", b""))
        self.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self.filename = filename.decode("utf-8", "replace") if filename is not None else None
        if self.name == "file":
            self.pending.append(("begin", self.filename or "upload"))

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.name == "file":
            self.pending.append(("data", bytes(data[start:end])))
        elif len(self._buffer) < _FIELD_LIMIT:
            self._buffer += data[start:end][: _FIELD_LIMIT - len(self._buffer)]

    def _end(self) -> None:
        if self.name == "file":
            self.pending.append(("end", None))
        elif self.name:
            self.fields[self.name] = self._buffer.decode("utf-8", "replace")


async def receive_upload(request: Request, staging_dir: Path, max_bytes: int) -> ReceivedFile:
    """Stream the ``file`` field of a multipart request to a new file in ``staging_dir``."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise SlicerCloudError("Send the file as multipart/form-data with the field 'file'.", status=415)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + _DRAIN_LIMIT:
        raise SlicerCloudError(f"The upload is larger than the limit of {max_bytes / 1024**2:.0f} MiB.", status=413)
    parts = _Parts()
    parser = MultipartParser(options[b"boundary"], parts.callbacks())
    staging_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    written, total = 0, 0
    result: ReceivedFile | None = None
    too_large = False
    target = staging_dir / f"{os.urandom(8).hex()}.upload"
    with atomic_output(target) as tmp, open(tmp, "wb") as out:
        filename = None
        async for chunk in request.stream():
            total += len(chunk)
            if too_large:
                if total > max_bytes + _DRAIN_LIMIT:
                    break
                continue
            parser.write(chunk)
            for event, payload in parts.pending:
                if event == "begin":
                    if filename is not None:
                        raise SlicerCloudError("Send one file per upload (one 'file' field).", status=422)
                    filename = str(payload)
                elif event == "data":
                    written += len(payload)  # type: ignore[arg-type]
                    if written > max_bytes:
                        too_large = True
                        break
                    out.write(payload)  # type: ignore[arg-type]
                    digest.update(payload)  # type: ignore[arg-type]
            parts.pending.clear()
        if too_large:
            raise SlicerCloudError(f"The upload is larger than the limit of {max_bytes / 1024**2:.0f} MiB.", status=413)
        parser.finalize()
        if filename is None:
            raise SlicerCloudError("The upload has no 'file' field.", status=422)
        result = ReceivedFile(target, safe_name(filename, "upload"), written, digest.hexdigest(), dict(parts.fields))
    return result
