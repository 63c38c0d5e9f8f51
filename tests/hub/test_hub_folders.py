"""The demo spawner's user folders never overlap the hub's state folder (its cookie secret and
database): by default they sit beside it, and a folder inside it is refused at spawn."""

from __future__ import annotations

from pathlib import Path

import pytest

from slicer_cloud.hub.config import hub_config
from slicer_cloud.hub.settings import HubSettings
from slicer_cloud.hub.spawners import check_user_folder


def _config(state: Path, **settings):
    return hub_config(ip="127.0.0.1", port=0, state_dir=state, proxy_command=Path("/bin/true"), settings=HubSettings(**settings))


def _user_folder(config, user: str) -> Path:
    return Path(config.SlicerCloudDemoSpawner.home_dir_template.format(username=user)).resolve()


def test_by_default_user_folders_are_beside_the_state_folder_not_in_it(tmp_path):
    state = tmp_path / "slicer-cloud-hub"
    config = _config(state)
    folder = _user_folder(config, "alice")
    assert state.resolve() not in folder.parents
    assert folder == (tmp_path / "slicer-cloud-hub-users" / "alice").resolve()
    assert Path(config.SlicerCloudDemoSpawner.hub_state_dir) == state
    assert check_user_folder(folder, state) == folder


def test_a_chosen_users_folder_is_used(tmp_path):
    config = _config(tmp_path / "state", users_dir=tmp_path / "class")
    assert _user_folder(config, "bob") == (tmp_path / "class" / "bob").resolve()


@pytest.mark.parametrize(
    "folder",
    ["state/users/alice", "state", ".", "users/../state/x"],
    ids=["inside", "the-state-folder", "around-it", "dot-dot"],
)
def test_a_user_folder_overlapping_the_state_folder_is_refused(tmp_path, folder):
    state = tmp_path / "state"
    state.mkdir()
    with pytest.raises(ValueError, match="overlaps the hub's state folder"):
        check_user_folder(tmp_path / folder, state)
