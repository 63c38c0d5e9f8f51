"""`slicer-cloud deploy compose` writes a deployment folder: checked file by file, by Debian's
docker-compose (the compose file's validity) and by loading the hub's configuration."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from traitlets.config import Config

from slicer_cloud.deploy.compose import SECRET_KEYS, ComposeOptions, read_env, write_compose
from slicer_cloud.errors import SlicerCloudError

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slicer_cloud.cli", "deploy", "compose", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def load_hub_config(folder: Path, extra_env: dict | None = None) -> Config:
    """Execute the written jupyterhub_config.py as JupyterHub does, with the folder's .env."""
    config = Config()
    env = {**read_env(folder / ".env"), **(extra_env or {})}
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        code = (folder / "jupyterhub_config.py").read_text()
        exec(compile(code, str(folder / "jupyterhub_config.py"), "exec"), {"get_config": lambda: config})
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return config


def test_cli_writes_the_folder_with_private_generated_secrets(tmp_path: Path) -> None:
    done = cli("--out", "site", "--with-pacs", "--cpus-per-user", "1.5", "--memory-per-user", "3g", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "site"
    assert {p.name for p in folder.iterdir()} == {".env", ".gitignore", "Caddyfile", "docker-compose.yml", "jupyterhub_config.py"}
    # the next two commands, in order
    lines = done.stdout.splitlines()
    assert lines[lines.index("Next:") + 1 :][:2] == [f"  cd {Path('site')}", "  docker compose up -d"]
    env_path = folder / ".env"
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
    assert ".env" in (folder / ".gitignore").read_text().split()
    values = read_env(env_path)
    assert values["COMPOSE_PROFILES"] == "pacs"
    assert values["SLICER_CLOUD_CPUS_PER_USER"] == "1.5" and values["SLICER_CLOUD_MEMORY_PER_USER"] == "3G"
    for key in SECRET_KEYS:
        assert len(values[key]) == 64
        for other in folder.iterdir():
            if other.name != ".env":
                assert values[key] not in other.read_text(), f"{key} leaked into {other.name}"
        assert values[key] not in done.stdout + done.stderr


def test_writing_again_keeps_the_secrets_and_refreshes_the_answers(tmp_path: Path) -> None:
    write_compose(ComposeOptions(out=tmp_path / "d"))
    first = read_env(tmp_path / "d" / ".env")
    write_compose(ComposeOptions(out=tmp_path / "d", domain="slicer.example.org", with_dask=True))
    second = read_env(tmp_path / "d" / ".env")
    assert all(first[key] == second[key] for key in SECRET_KEYS)
    assert second["SLICER_CLOUD_DOMAIN"] == "slicer.example.org" and second["COMPOSE_PROFILES"] == "dask"
    other = read_env(write_compose(ComposeOptions(out=tmp_path / "e"))[0])
    assert all(first[key] != other[key] for key in SECRET_KEYS)


def test_caddyfile_uses_the_internal_ca_only_for_localhost(tmp_path: Path) -> None:
    write_compose(ComposeOptions(out=tmp_path / "local"))
    local = (tmp_path / "local" / "Caddyfile").read_text()
    assert "localhost {" in local and "tls internal" in local and "reverse_proxy hub:8000" in local
    write_compose(ComposeOptions(out=tmp_path / "public", domain="Slicer.Example.org", email="ops@example.org"))
    public = (tmp_path / "public" / "Caddyfile").read_text()
    assert "slicer.example.org {" in public and "tls internal" not in public and "email ops@example.org" in public


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--domain", "not a domain"], "is not a host name"),
        (["--auth", "ldap"], "choose one of native, github, google, oidc"),
        (["--memory-per-user", "lots"], "a size such as 4G"),
        (["--cpus-per-user", "0"], "between 0.1 and 256"),
        (["--auth", "oidc"], "needs --oidc-issuer"),
        (["--admin", "Root User"], "a user name of lower-case letters"),
        (["--source", "."], "no deploy/docker/Dockerfile there"),
    ],
)
def test_bad_answers_get_a_clear_message_and_write_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    done = cli("--out", "site", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "site").exists()


def test_source_adds_build_sections_that_compose_accepts(tmp_path: Path) -> None:
    done = cli("--out", "site", "--source", str(REPO), "--with-dask", "--with-pacs", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    override = (tmp_path / "site" / "docker-compose.override.yml").read_text()
    assert f"context: {REPO}" in override and "target: hub" in override and "target: singleuser" in override
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is missing: scripts/bootstrap.sh installs Debian's docker-compose"
    config = subprocess.run([compose, "config"], cwd=tmp_path / "site", capture_output=True, text=True, timeout=60)
    assert config.returncode == 0, config.stderr
    for service in ("caddy:", "hub:", "orthanc:", "dask-scheduler:", "dask-worker:", "user-image:"):
        assert f"  {service}" in config.stdout
    assert "slicer-cloud-net" in config.stdout and "/var/run/docker.sock" in config.stdout
    # without --source the build sections go away again
    assert cli("--out", "site", cwd=tmp_path).returncode == 0
    assert not (tmp_path / "site" / "docker-compose.override.yml").exists()
    services = subprocess.run([compose, "config", "--services"], cwd=tmp_path / "site", capture_output=True, text=True, timeout=60)
    assert services.returncode == 0 and "user-image" not in services.stdout.split() and "hub" in services.stdout.split()
    assert read_env(tmp_path / "site" / ".env")["COMPOSE_PROFILES"] == ""


def test_hub_config_native_login_limits_and_volumes(tmp_path: Path) -> None:
    write_compose(ComposeOptions(out=tmp_path, admin="teacher", cpus_per_user=1.5, memory_per_user="3G", project="lab", idle_timeout_s=900))
    c = load_hub_config(tmp_path)
    assert c.JupyterHub.authenticator_class == "native"
    assert c.NativeAuthenticator.open_signup is False and c.Authenticator.admin_users == {"teacher"}
    assert c.JupyterHub.spawner_class == "docker"
    # HTTPS as Caddy saw it reaches the hub and users' servers: their cookies are Secure
    assert "--no-x-forward" in c.ConfigurableHTTPProxy.command and c.JupyterHub.cookie_options == {"secure": True}
    assert "--ServerApp.trust_xheaders=True" in c.DockerSpawner.args
    assert c.DockerSpawner.image == "slicer-cloud:0.1.0"
    assert c.DockerSpawner.cpu_limit == 1.5 and c.DockerSpawner.mem_limit == "3G"
    assert c.DockerSpawner.volumes == {"lab-user-{username}": "/home/slicer/work"}
    assert c.DockerSpawner.network_name == "lab-net"
    assert "device_requests" not in c.DockerSpawner.extra_host_config
    assert c.JupyterHub.services[0]["name"] == "idle-culler" and "--timeout=900" in c.JupyterHub.services[0]["command"]


@pytest.mark.parametrize("auth", ["github", "google", "oidc"])
def test_hub_config_oauth_logins(tmp_path: Path, auth: str) -> None:
    write_compose(ComposeOptions(out=tmp_path, auth=auth, domain="slicer.example.org", oauth_client_id="the-id",
                                 oidc_issuer="https://id.example.org/realms/lab", oauth_allowed_users="ann,bob"))
    c = load_hub_config(tmp_path, {"OAUTH_CLIENT_SECRET": "s3cret"})
    assert c.JupyterHub.authenticator_class == {"github": "github", "google": "google", "oidc": "generic-oauth"}[auth]
    assert c.OAuthenticator.client_id == "the-id" and c.OAuthenticator.client_secret == "s3cret"
    assert c.OAuthenticator.oauth_callback_url == "https://slicer.example.org/hub/oauth_callback"
    assert c.OAuthenticator.allowed_users == {"ann", "bob"}
    if auth == "oidc":
        assert c.GenericOAuthenticator.token_url == "https://id.example.org/realms/lab/protocol/openid-connect/token"


def test_hub_config_profiles_gpu_reach_users_containers(tmp_path: Path) -> None:
    write_compose(ComposeOptions(out=tmp_path, gpu=True, with_pacs=True, with_dask=True))
    c = load_hub_config(tmp_path)
    [request] = c.DockerSpawner.extra_host_config["device_requests"]
    assert request["Capabilities"] == [["gpu"]] and request["Count"] == -1
    from slicer_cloud.dicomweb.settings import DicomwebServer

    [pacs] = [DicomwebServer(**server) for server in json.loads(c.DockerSpawner.environment["SLICER_CLOUD_DICOMWEB_SERVERS"])]
    assert pacs.url == "http://orthanc:8042/dicom-web" and pacs.auth == "basic" and pacs.username == "slicer"
    assert pacs.secret() == read_env(tmp_path / ".env")["ORTHANC_PASSWORD"]
    assert c.DockerSpawner.environment["SLICER_CLOUD_SCHEDULER"] == "tcp://dask-scheduler:8786"
    assert c.DockerSpawner.volumes["slicer-cloud-dask-shared"] == "/home/slicer/work/shared"
