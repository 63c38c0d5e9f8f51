"""The SQLite index of the items in a data store: what each file is, its geometry and where it
came from. The index never parses a file itself: callers pass metadata read in a worker."""

from __future__ import annotations

import datetime as _dt
import json
import secrets
import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store.db import Database

ITEM_KINDS = ("volume", "segmentation", "model", "table", "file")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    owned INTEGER NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created TEXT NOT NULL,
    meta TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_kind ON items(kind, created);
"""


def new_id() -> str:
    return secrets.token_hex(8)


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class Item:
    """One file of the store (or a file of the data folder it points to).

    ``path`` is relative to the data root. ``owned`` items live in the store's own folder and
    their file is deleted with them; items registered from a path only point at the user's file.
    """

    id: str
    kind: str
    name: str
    path: str
    owned: bool
    size: int
    sha256: str
    created: str = field(default_factory=now_iso)
    dimensions: list[int] | None = None
    spacing: list[float] | None = None
    origin: list[float] | None = None
    direction: list[list[float]] | None = None
    scalar_type: str | None = None
    components: int | None = None
    source: dict[str, Any] = field(default_factory=dict)

    _META = ("dimensions", "spacing", "origin", "direction", "scalar_type", "components")

    def to_json(self) -> dict[str, Any]:
        """The public shape (see docs/compute.md); ``path`` is relative to the data folder."""
        data = asdict(self)
        data.pop("owned")
        return data

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Item:
        meta = json.loads(row["meta"])
        return cls(
            id=row["id"],
            kind=row["kind"],
            name=row["name"],
            path=row["path"],
            owned=bool(row["owned"]),
            size=row["size"],
            sha256=row["sha256"],
            created=row["created"],
            source=json.loads(row["source"]),
            **{key: meta.get(key) for key in cls._META},
        )


class ItemIndex:
    """Items in SQLite. ``insert`` can join a caller's transaction (see :class:`Database`)."""

    def __init__(self, db: Database):
        self.db = db
        with db.transaction() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    def insert(self, item: Item, conn: sqlite3.Connection | None = None) -> Item:
        if item.kind not in ITEM_KINDS:
            raise ValueError(f"unknown item kind {item.kind!r}")
        meta = json.dumps({key: getattr(item, key) for key in Item._META})
        values = (
            item.id, item.kind, item.name, item.path, int(item.owned), item.size, item.sha256,
            item.created, meta, json.dumps(item.source),
        )
        sql = "INSERT INTO items (id, kind, name, path, owned, size, sha256, created, meta, source) VALUES (?,?,?,?,?,?,?,?,?,?)"
        if conn is not None:
            conn.execute(sql, values)
        else:
            with self.db.transaction() as own:
                own.execute(sql, values)
        return item

    def get(self, item_id: str) -> Item:
        rows = self.db.query("SELECT * FROM items WHERE id = ?", (item_id,))
        if not rows:
            raise SlicerCloudError(f"No item with id {item_id!r}.", status=404)
        return Item.from_row(rows[0])

    def exists(self, item_id: str) -> bool:
        return bool(self.db.query("SELECT 1 FROM items WHERE id = ?", (item_id,)))

    def list(self, *, kind: str | None = None, offset: int = 0, limit: int = 50) -> tuple[list[Item], int]:
        """A page of items, newest first, and the total count."""
        if kind is not None and kind not in ITEM_KINDS:
            raise SlicerCloudError(f"Unknown kind {kind!r}; use one of {', '.join(ITEM_KINDS)}.", status=422)
        where, params = ("WHERE kind = ?", (kind,)) if kind else ("", ())
        total = self.db.query(f"SELECT COUNT(*) AS n FROM items {where}", params)[0]["n"]
        rows = self.db.query(
            f"SELECT * FROM items {where} ORDER BY created DESC, id LIMIT ? OFFSET ?", (*params, limit, offset)
        )
        return [Item.from_row(row) for row in rows], total

    def owned_ids(self) -> set[str]:
        return {row["id"] for row in self.db.query("SELECT id FROM items WHERE owned = 1")}

    def delete(self, item_id: str) -> Item:
        with self.db.transaction() as conn:
            rows = conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchall()
            if not rows:
                raise SlicerCloudError(f"No item with id {item_id!r}.", status=404)
            conn.execute("DELETE FROM items WHERE id = ?", (item_id,))
        return Item.from_row(rows[0])
