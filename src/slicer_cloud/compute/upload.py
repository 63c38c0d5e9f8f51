"""Receiving an upload: the multipart body is parsed as it arrives and the ``file`` part goes
straight to disk (never whole in memory), atomically, stopped with a 413 at the size limit.

Everything else a body holds is bounded too, whether it declares its length or comes chunked:
the whole body (the file's limit plus a little for the form around it), the number of parts, the
bytes of a part's headers and of each form field. Past any of them the answer is a 413 or 400
that says which, and nothing is kept.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store.atomic import atomic_output
from slicer_cloud.store.items import safe_name

_FIELD_LIMIT = 4096
#: the headers of one part (Content-Disposition, Content-Type): a few hundred bytes in practice
_PART_HEADERS_LIMIT = 16 * 1024
#: what the body may hold beyond the file itself: boundaries, part headers, the small fields
_FORM_OVERHEAD = 1024 * 1024
#: after a refusal, read (and drop) this much more so the client sees the answer
_DRAIN_LIMIT = 64 * 1024 * 1024
#: every body that is not an upload (JSON requests) is small
SMALL_BODY_BYTES = 1024 * 1024


def upload_body_limit(max_bytes: int) -> int:
    """The most bytes an upload request may send, the drain after a refusal included (for the
    framework's own body limit, which then never cuts in before this module's clearer answer)."""
    return max_bytes + _FORM_OVERHEAD + _DRAIN_LIMIT


async def read_small_body(request: Request, limit: int = SMALL_BODY_BYTES) -> bytes:
    """A whole request body that must be small (JSON), refused with a 413 past ``limit``."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise SlicerCloudError(f"The request body is larger than {limit // 1024} KiB.", status=413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise SlicerCloudError(f"The request body is larger than {limit // 1024} KiB.", status=413)
    return bytes(body)


@dataclass
class ReceivedFile:
    path: Path
    filename: str
    size: int
    sha256: str
    fields: dict[str, str] = field(default_factory=dict)


class _Parts:
    """Collects the multipart callbacks; file data is handed to the writer chunk by chunk.

    A callback raises :class:`SlicerCloudError` the moment the body passes a limit."""

    def __init__(self, max_parts: int) -> None:
        self.max_parts = max_parts
        self.count = 0
        self.headers: dict[str, bytes] = {}
        self._header_bytes = 0
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
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self.count += 1
        if self.count > self.max_parts:
            raise SlicerCloudError(
                f"The upload has more than {self.max_parts} parts; send the file (field 'file') and at most a few fields.",
                status=400,
            )
        self.headers, self.name, self.filename, self._buffer, self._header_bytes = {}, None, None, b"", 0

    def _count_header(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > _PART_HEADERS_LIMIT:
            raise SlicerCloudError(
                f"A part of the upload has more than {_PART_HEADERS_LIMIT // 1024} KiB of headers.", status=400
            )

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._value += data[start:end]

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
            return
        if len(self._buffer) + (end - start) > _FIELD_LIMIT:
            raise SlicerCloudError(
                f"The form field {self.name[:40]!r} is longer than {_FIELD_LIMIT} bytes; only the file may be large.",
                status=400,
            )
        self._buffer += data[start:end]

    def _end(self) -> None:
        if self.name == "file":
            self.pending.append(("end", None))
        elif self.name:
            self.fields[self.name] = self._buffer.decode("utf-8", "replace")


def _malformed(error: Exception) -> SlicerCloudError:
    return SlicerCloudError(
        "The upload is not a well-formed multipart/form-data body (or a part has too many or too long headers).",
        status=400,
        detail=str(error),
    )


def _too_large(max_bytes: int) -> SlicerCloudError:
    return SlicerCloudError(f"The upload is larger than the limit of {max_bytes / 1024**2:.0f} MiB.", status=413)


async def receive_upload(request: Request, staging_dir: Path, max_bytes: int, max_parts: int = 16) -> ReceivedFile:
    """Stream the ``file`` field of a multipart request to a new file in ``staging_dir``."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise SlicerCloudError("Send the file as multipart/form-data with the field 'file'.", status=415)
    body_limit = max_bytes + _FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > body_limit:
        raise _too_large(max_bytes)
    parts = _Parts(max_parts)
    parser = MultipartParser(options[b"boundary"], parts.callbacks())
    staging_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    written, total = 0, 0
    refusal: SlicerCloudError | None = None
    target = staging_dir / f"{os.urandom(8).hex()}.upload"
    with atomic_output(target) as tmp, open(tmp, "wb") as out:
        filename = None
        # Counted as it arrives: a chunked body declares no length.
        async for chunk in request.stream():
            total += len(chunk)
            if refusal is not None:
                if total > body_limit + _DRAIN_LIMIT:
                    break
                continue
            if total > body_limit:
                refusal = _too_large(max_bytes)
                continue
            try:
                parser.write(chunk)
            except SlicerCloudError as error:
                refusal = error
                continue
            except MultipartParseError as error:
                refusal = _malformed(error)
                continue
            for event, payload in parts.pending:
                if event == "begin":
                    if filename is not None:
                        refusal = SlicerCloudError("Send one file per upload (one 'file' field).", status=422)
                        break
                    filename = str(payload)
                elif event == "data":
                    written += len(payload)  # type: ignore[arg-type]
                    if written > max_bytes:
                        refusal = _too_large(max_bytes)
                        break
                    out.write(payload)  # type: ignore[arg-type]
                    digest.update(payload)  # type: ignore[arg-type]
            parts.pending.clear()
        if refusal is not None:
            raise refusal
        try:
            parser.finalize()
        except MultipartParseError as error:
            raise _malformed(error) from None
        if filename is None:
            raise SlicerCloudError("The upload has no 'file' field.", status=422)
        result = ReceivedFile(target, safe_name(filename, "upload"), written, digest.hexdigest(), dict(parts.fields))
    return result
