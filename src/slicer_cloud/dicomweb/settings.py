"""DICOMweb servers as typed settings.

A server is a name (what users and links see), a base URL (what only the server side sees) and
how to authenticate. Servers come from the environment (``SLICER_CLOUD_DICOMWEB_SERVERS``, a JSON
list), from a JSON file (``SLICER_CLOUD_DICOMWEB_SERVERS_FILE``), or from the command line
(``slicer-cloud --pacs SPEC ...``, which fills the environment so every process started for the
command sees the same servers). Secrets are best given as files (``token_file``,
``password_file``): a command line is readable by every local user, a file's mode is not.
Nothing here is ever put in browser state: the viewer and the portal show names only.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from slicer_cloud.errors import SlicerCloudError

SERVERS_ENV = "SLICER_CLOUD_DICOMWEB_SERVERS"
SERVERS_FILE_ENV = "SLICER_CLOUD_DICOMWEB_SERVERS_FILE"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class DicomwebServer(BaseModel):
    """One DICOMweb server (QIDO-RS, WADO-RS and STOW-RS under one base URL)."""

    model_config = {"extra": "forbid"}

    name: str = Field(description="Short name shown to users and used in links (dicomweb:NAME/study/series).")
    url: str = Field(description="Base URL of the DICOMweb service, e.g. http://pacs:8042/dicom-web.")
    auth: Literal["none", "basic", "bearer"] = "none"
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    token: SecretStr | None = None
    token_file: Path | None = Field(default=None, description="A file holding the bearer token (re-read on every connection, so it can be rotated).")
    ca_file: Path | None = Field(default=None, description="CA certificates (PEM) to trust for an https:// URL signed by a private CA.")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("a server name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("the URL must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_auth(self) -> "DicomwebServer":
        if self.auth == "basic" and (not self.username or (self.password is None and self.password_file is None)):
            raise ValueError("basic authentication needs a username and a password or password_file")
        if self.auth == "bearer" and self.token is None and self.token_file is None:
            raise ValueError("bearer authentication needs a token or token_file")
        return self

    def secret(self) -> str | None:
        """The password (basic) or token (bearer), read from its file when given as one."""
        value, path = (self.password, self.password_file) if self.auth == "basic" else (self.token, self.token_file)
        if self.auth == "none":
            return None
        if path is not None:
            try:
                return Path(path).read_text().strip()
            except OSError as error:
                raise SlicerCloudError(
                    f"The credentials file of the DICOMweb server {self.name!r} cannot be read.", status=500, detail=str(error)
                ) from None
        return value.get_secret_value() if value is not None else None

    def public(self) -> dict:
        """What a browser may see about this server: its name, never its URL or credentials."""
        return {"name": self.name}


class DicomwebSettings(BaseSettings):
    """The DICOMweb servers and the limits on talking to them."""

    model_config = SettingsConfigDict(env_prefix="SLICER_CLOUD_", extra="ignore")

    dicomweb_servers: list[DicomwebServer] = Field(default_factory=list)
    dicomweb_servers_file: Path | None = None
    dicomweb_timeout_s: float = Field(default=30.0, gt=0, description="Connect and read timeout of one request.")
    dicomweb_workers: int = Field(default=6, ge=1, le=32, description="Instances or frames fetched in parallel.")
    dicomweb_max_frames: int = Field(default=5000, gt=0, description="Most frames (slices) one series may have.")
    dicomweb_max_response_bytes: int = Field(
        default=256 * 1024**2, gt=0, description="Largest single response read from a server (one instance, one search)."
    )
    dicomweb_uncompressed: bool = Field(
        default=False, description="Ask servers for uncompressed pixels instead of decoding what they store."
    )
    dicomweb_max_results: int = Field(default=200, gt=0, le=10000, description="Most studies or series one search lists.")

    def servers(self) -> list[DicomwebServer]:
        servers = list(self.dicomweb_servers)
        if self.dicomweb_servers_file is not None:
            servers += load_servers_file(self.dicomweb_servers_file)
        names = [s.name for s in servers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SlicerCloudError(f"DICOMweb server names must be unique; repeated: {', '.join(duplicates)}.")
        return servers

    def server(self, name: str) -> DicomwebServer:
        for server in self.servers():
            if server.name == name:
                return server
        known = ", ".join(s.name for s in self.servers()) or "none is configured"
        raise SlicerCloudError(f"There is no DICOMweb server named {name!r} (known: {known}).", status=404)


def load_settings() -> DicomwebSettings:
    """The settings from the environment, with a clear message for a malformed server list."""
    try:
        return DicomwebSettings()
    except (ValidationError, ValueError) as error:
        raise SlicerCloudError(f"The DICOMweb server settings are not valid: {_first_error(error)}", detail=str(error)) from None


def load_servers_file(path: Path) -> list[DicomwebServer]:
    """Servers from a JSON file: a list of objects with the fields of :class:`DicomwebServer`."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SlicerCloudError(f"The DICOMweb servers file {Path(path).name} cannot be read as JSON.", detail=str(error)) from None
    if not isinstance(data, list):
        raise SlicerCloudError(f"The DICOMweb servers file {Path(path).name} must hold a JSON list of servers.")
    try:
        return [DicomwebServer.model_validate(item) for item in data]
    except ValidationError as error:
        raise SlicerCloudError(f"A server in {Path(path).name} is not valid: {_first_error(error)}", detail=str(error)) from None


def parse_server_spec(spec: str) -> DicomwebServer:
    """A server from the command line: ``NAME=URL`` or ``name=N,url=U,auth=bearer,token_file=F``."""
    spec = spec.strip()
    fields: dict[str, str] = {}
    if "," not in spec and not spec.startswith(("name=", "url=")):
        name, sep, url = spec.partition("=")
        if not sep:
            raise SlicerCloudError(f"--pacs takes NAME=URL or name=...,url=...,auth=...; got {spec!r}.")
        fields = {"name": name, "url": url}
    else:
        for part in spec.split(","):
            key, sep, value = part.partition("=")
            if not sep:
                raise SlicerCloudError(f"--pacs: {part!r} is not KEY=VALUE.")
            fields[key.strip().replace("-", "_")] = value.strip()
    for secret in ("password", "token"):
        if secret in fields:
            raise SlicerCloudError(
                f"--pacs: give the {secret} as {secret}_file=PATH (a command line is visible to every local user)."
            )
    try:
        return DicomwebServer.model_validate(fields)
    except ValidationError as error:
        raise SlicerCloudError(f"--pacs {spec!r}: {_first_error(error)}", detail=str(error)) from None


def export_servers(servers: list[DicomwebServer]) -> None:
    """Put command-line servers in this process's environment, for it and every child it starts."""
    existing = json.loads(os.environ.get(SERVERS_ENV) or "[]")
    merged = existing + [_plain(s) for s in servers]
    os.environ[SERVERS_ENV] = json.dumps(merged)


def _plain(server: DicomwebServer) -> dict:
    data = server.model_dump(exclude_none=True)
    for key, value in data.items():
        if isinstance(value, SecretStr):
            data[key] = value.get_secret_value()
        elif isinstance(value, Path):
            data[key] = str(value)
    return data


def _first_error(error: Exception) -> str:
    if isinstance(error, ValidationError) and error.errors():
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg', '')}" if where else str(first.get("msg", ""))
    return str(error).splitlines()[0]
