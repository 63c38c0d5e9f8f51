"""The item store: the data folder, the SQLite index and the folder of files the store owns.

Layout under the data folder::

    .slicer-cloud/index.sqlite     items and jobs
    .slicer-cloud/items/ID/NAME    uploads and job outputs (deleted with their item)
    .slicer-cloud/jobs/ID/         a job's working folder while it runs

Items registered from a path inside the data folder point at the user's file and are never
deleted from disk. The folder is hidden so that listings of the data folder do not show it.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path

from slicer_cloud.store.db import Database
from slicer_cloud.store.index import Item, ItemIndex, new_id
from slicer_cloud.store.paths import DataRoot

STATE_DIR = ".slicer-cloud"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str, default: str = "file") -> str:
    """A file name with no folder part, no leading dot and only portable characters."""
    base = Path(str(name).replace("\\", "/")).name
    base = _UNSAFE.sub("_", base).lstrip(".")[:120]
    return base or default


class ItemStore:
    """What the compute API (and any other service) uses to keep and find items."""

    def __init__(self, data: DataRoot | Path, state_dir: Path | None = None):
        self.data = data if isinstance(data, DataRoot) else DataRoot(Path(data))
        self.state_dir = Path(state_dir) if state_dir else self.data.root / STATE_DIR
        self.items_dir = self.state_dir / "items"
        self.jobs_dir = self.state_dir / "jobs"
        self.items_dir.mkdir(parents=True, exist_ok=True)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(self.state_dir / "index.sqlite")
        self.index = ItemIndex(self.db)

    # -- paths -------------------------------------------------------------------------------
    def new_item_path(self, name: str) -> tuple[str, Path]:
        """A fresh id and the path its file will have (the folder exists, the file not yet)."""
        item_id = new_id()
        folder = self.items_dir / item_id
        folder.mkdir(parents=True)
        return item_id, folder / safe_name(name)

    def relative(self, path: Path) -> str:
        return self.data.relative(path)

    def absolute(self, item: Item) -> Path:
        # Re-resolve through DataRoot: an item's path can never point outside the data folder.
        return self.data.resolve(item.path)

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    # -- items -------------------------------------------------------------------------------
    def get(self, item_id: str) -> Item:
        return self.index.get(item_id)

    def add(self, item: Item) -> Item:
        return self.index.insert(item)

    def delete(self, item_id: str) -> Item:
        item = self.index.delete(item_id)
        if item.owned:
            self.discard_folder(item.id)
        return item

    def discard_folder(self, item_id: str) -> None:
        folder = self.items_dir / item_id
        if folder.parent == self.items_dir:
            shutil.rmtree(folder, ignore_errors=True)

    def collect_garbage(self) -> int:
        """Remove item folders that no item owns (a crash between moving a file in and
        committing its item). Returns how many were removed."""
        owned = self.index.owned_ids()
        removed = 0
        for folder in self.items_dir.iterdir():
            if folder.is_dir() and folder.name not in owned:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.db.close()
