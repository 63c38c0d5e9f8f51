"""Settings of ``slicer-cloud hub`` (environment prefix ``SLICER_CLOUD_HUB_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SLICER_CLOUD_HUB_", extra="ignore")

    idle_timeout_s: int = Field(default=3600, gt=0, description="A server with no activity for this long is stopped (0 keeps them).")
    cull_every_s: int = Field(default=300, gt=0, description="How often the idle culler looks.")
    cull: bool = Field(default=True, description="Run the idle culler (jupyterhub-idle-culler).")
    spawner: str = Field(default="slicer_cloud.hub.spawners.SlicerCloudSpawner",
                         description="The spawner class; slicer_cloud.hub.spawners.SlicerCloudDemoSpawner needs no accounts.")
    start_timeout_s: int = Field(default=120, gt=0, description="Longest wait for a user's server to start.")
    hub_port: int = Field(default=0, ge=0, le=65535, description="The hub's internal port (0: a free one).")
    proxy_api_port: int = Field(default=0, ge=0, le=65535, description="The proxy's API port (0: a free one).")
    users_dir: Path | None = Field(
        default=None,
        description="Demo spawner: the folder of users' folders (USERS_DIR/NAME). None: STATE-users next to the "
        "--state folder, never inside it (it holds the cookie secret and the database).",
    )
