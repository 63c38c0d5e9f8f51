"""The item index and store: SQLite rows, paging, owned files, crash leftovers."""

from __future__ import annotations

import pytest

from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store import Item, ItemStore, safe_name


def _item(store: ItemStore, name: str, kind: str = "volume") -> Item:
    item_id, path = store.new_item_path(name)
    path.write_bytes(b"data")
    return store.add(Item(id=item_id, kind=kind, name=name, path=store.relative(path), owned=True, size=4,
                          sha256="0" * 64, dimensions=[2, 3, 4], spacing=[1.0, 1.0, 2.5], source={"type": "upload"}))


def test_items_round_trip_with_their_metadata(tmp_path):
    store = ItemStore(tmp_path)
    item = _item(store, "ct.nrrd")
    again = ItemStore(tmp_path).get(item.id)  # a second connection reads what the first wrote
    assert again.to_json() == item.to_json()
    assert again.to_json()["dimensions"] == [2, 3, 4] and again.source == {"type": "upload"}
    assert "owned" not in again.to_json()


def test_listing_pages_and_filters(tmp_path):
    store = ItemStore(tmp_path)
    for n in range(7):
        _item(store, f"v{n}.nrrd")
    _item(store, "mesh.stl", kind="model")
    page, total = store.index.list(offset=0, limit=3)
    assert total == 8 and len(page) == 3
    rest, _ = store.index.list(offset=3, limit=10)
    assert len({i.id for i in page} | {i.id for i in rest}) == 8
    models, count = store.index.list(kind="model")
    assert count == 1 and models[0].name == "mesh.stl"
    with pytest.raises(SlicerCloudError) as caught:
        store.index.list(kind="banana")
    assert caught.value.status == 422


def test_delete_removes_owned_files_but_never_the_users(tmp_path):
    store = ItemStore(tmp_path)
    owned = _item(store, "upload.nrrd")
    owned_path = store.absolute(owned)
    users = tmp_path / "mine.nrrd"
    users.write_bytes(b"x")
    pointed = store.add(Item(id="abc123", kind="volume", name="mine.nrrd", path="mine.nrrd", owned=False, size=1, sha256="1" * 64))
    store.delete(owned.id)
    store.delete(pointed.id)
    assert not owned_path.exists() and users.exists()
    with pytest.raises(SlicerCloudError) as caught:
        store.get(owned.id)
    assert caught.value.status == 404


def test_garbage_collection_removes_folders_without_an_item(tmp_path):
    store = ItemStore(tmp_path)
    kept = _item(store, "kept.nrrd")
    _orphan_id, orphan = store.new_item_path("orphan.nrrd")  # a crash before the item was committed
    orphan.write_bytes(b"partial")
    assert store.collect_garbage() == 1
    assert not orphan.parent.exists() and store.absolute(kept).exists()


def test_the_store_folder_is_hidden_from_data_listings(tmp_path):
    store = ItemStore(tmp_path)
    _item(store, "ct.nrrd")
    assert all(".slicer-cloud" not in str(p) for p in store.data.walk())


@pytest.mark.parametrize("given, safe", [("../../etc/passwd", "passwd"), (".hidden", "hidden"), ("a b?.nrrd", "a_b_.nrrd"), ("", "file")])
def test_safe_names(given, safe):
    assert safe_name(given) == safe
