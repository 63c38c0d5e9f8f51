"""What a running CLI module says back: progress lines on stdout and the return-parameter file.

Slicer's convention: ``<filter-progress>0.4</filter-progress>``, ``<filter-name>``,
``<filter-comment>`` (often inside ``<filter-start>``/``<filter-end>``) on stdout, and simple
outputs written as ``name = value`` lines to the file named by ``--returnparameterfile``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slicer_cloud.compute.modules.descriptor import ModuleDescriptor
from slicer_cloud.errors import SlicerCloudError

_TAG = re.compile(r"<(filter-progress|filter-stage-progress|filter-name|filter-comment|filter-end)>(.*?)</\1>|<(filter-end)\s*/?>", re.S)
_MAX_RETURN_FILE = 1024 * 1024


@dataclass
class ProgressUpdate:
    progress: float | None = None
    name: str | None = None
    comment: str | None = None
    ended: bool = False


def parse_progress(line: str) -> ProgressUpdate | None:
    """The progress a stdout line carries, or None for an ordinary log line."""
    if "<filter-" not in line:
        return None
    update = ProgressUpdate()
    found = False
    for match in _TAG.finditer(line):
        found = True
        tag, text = match.group(1) or match.group(3), (match.group(2) or "").strip()
        if tag == "filter-progress":
            try:
                update.progress = min(1.0, max(0.0, float(text)))
            except ValueError:
                pass
        elif tag == "filter-name":
            update.name = text[:200]
        elif tag == "filter-comment":
            update.comment = text[:500]
        elif tag == "filter-end":
            update.ended = True
    return update if found else ProgressUpdate() if line.strip().startswith(("<filter-start", "</filter-start")) else None


def format_progress(fraction: float) -> str:
    return f"<filter-progress>{min(1.0, max(0.0, fraction)):.4f}</filter-progress>"


def format_return_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(format_return_value(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value).replace("\n", " ")


def read_return_parameters(path: Path, descriptor: ModuleDescriptor) -> dict[str, Any]:
    """Read ``name = value`` lines back, typed by the descriptor (unknown names are kept as text)."""
    path = Path(path)
    if not path.exists():
        return {}
    if path.stat().st_size > _MAX_RETURN_FILE:
        raise SlicerCloudError("The module's return-parameter file is larger than 1 MiB.", status=500)
    return parse_return_text(path.read_text(errors="replace"), descriptor)


def parse_return_text(text: str, descriptor: ModuleDescriptor) -> dict[str, Any]:
    """``name = value`` lines, typed by the descriptor's output parameters."""
    known = {p.name: p for p in descriptor.return_parameters}
    values: dict[str, Any] = {}
    for line in text[:_MAX_RETURN_FILE].splitlines():
        name, sep, text = line.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name:
            continue
        parameter = known.get(name)
        if parameter is None:
            values[name] = text
            continue
        try:
            values[name] = parameter.convert(text) if text != "" or parameter.type.endswith("vector") else None
        except SlicerCloudError:
            values[name] = text
    return values
