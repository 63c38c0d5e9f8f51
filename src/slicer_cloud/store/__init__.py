"""The data store: a root folder, safe path resolution and atomic writes (plus, for the compute
API, a SQLite index of items). Services share data through here, never through each other."""

from slicer_cloud.store.atomic import atomic_output, stream_to_file
from slicer_cloud.store.paths import DataRoot

__all__ = ["DataRoot", "atomic_output", "stream_to_file"]

# The item index and store (SQLite), shared by the compute API and any service that lists items.
from slicer_cloud.store.db import Database  # noqa: E402
from slicer_cloud.store.index import ITEM_KINDS, Item, ItemIndex  # noqa: E402
from slicer_cloud.store.items import ItemStore, safe_name  # noqa: E402

__all__ += ["Database", "ITEM_KINDS", "Item", "ItemIndex", "ItemStore", "safe_name"]
