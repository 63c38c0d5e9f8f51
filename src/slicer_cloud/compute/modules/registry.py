"""Which modules the service offers: the built-in ones, plus every executable in the
``--modules-path`` folders that answers ``--xml`` (so an installed desktop Slicer's
``cli-modules`` folder can be served as it is)."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from slicer_cloud.compute.jobs.spec import PYTHON
from slicer_cloud.compute.modules import builtin
from slicer_cloud.compute.modules.descriptor import ModuleDescriptor, parse_descriptor
from slicer_cloud.errors import SlicerCloudError

log = logging.getLogger(__name__)
_SKIP_SUFFIXES = (".so", ".dll", ".dylib", ".xml", ".txt", ".json", ".md", ".py", ".pyc", ".a", ".h")
_MAX_XML = 1024 * 1024


@dataclass
class ModuleEntry:
    descriptor: ModuleDescriptor
    command: list[str]  # the argv prefix that starts it
    builtin: bool

    @property
    def name(self) -> str:
        return self.descriptor.name


def _query_xml(executable: Path, timeout_s: float) -> ModuleEntry | None:
    try:
        done = subprocess.run(
            [str(executable), "--xml"], capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        log.info("skipping %s: --xml failed (%s)", executable, error)
        return None
    text = done.stdout[:_MAX_XML].decode("utf-8", "replace")
    start = text.find("<?xml")
    if start < 0:
        start = text.find("<executable")
    if done.returncode != 0 or start < 0:
        log.info("skipping %s: it does not answer --xml with a descriptor", executable)
        return None
    try:
        descriptor = parse_descriptor(text[start:].encode(), executable.name)
    except SlicerCloudError as error:
        log.warning("skipping %s: %s", executable, error.message)
        return None
    return ModuleEntry(descriptor, [str(executable)], builtin=False)


class Registry:
    def __init__(self, modules_paths: list[Path] | None = None, *, xml_timeout_s: float = 20.0):
        self._entries: dict[str, ModuleEntry] = {}
        for name in builtin.NAMES:
            module = builtin.load(name)
            self._entries[name] = ModuleEntry(parse_descriptor(module.XML, name), [PYTHON, "-m", f"{builtin.PACKAGE}.{name}"], True)
        candidates: list[Path] = []
        for folder in modules_paths or []:
            folder = Path(folder).expanduser().absolute()  # workers elsewhere start from another folder
            if not folder.is_dir():
                raise SlicerCloudError(f"--modules-path {folder} is not a folder.", status=500)
            for path in sorted(folder.iterdir()):
                if path.name.startswith(".") or path.name.lower().endswith(_SKIP_SUFFIXES):
                    continue
                if path.is_file() and os.access(path, os.X_OK):
                    candidates.append(path)
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            for entry in pool.map(lambda p: _query_xml(p, xml_timeout_s), candidates):
                if entry is None:
                    continue
                if entry.name in self._entries:
                    log.warning("module %s from %s hides an earlier one of the same name", entry.name, entry.command[0])
                self._entries[entry.name] = entry

    def get(self, name: str) -> ModuleEntry:
        entry = self._entries.get(name)
        if entry is None:
            raise SlicerCloudError(f"Unknown module {name!r}. GET /api/modules lists the modules.", status=404)
        return entry

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[ModuleEntry]:
        return [self._entries[name] for name in self.names()]
