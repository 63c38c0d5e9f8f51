"""``slicer-cloud deploy compose``: a ready deployment folder for ``docker compose up``.

The folder holds the compose file and the hub's configuration (copied from ``templates/``, the
same for every deployment), a Caddyfile for the domain, and ``.env``: every answer and every
generated secret, written with mode 0600 next to a ``.gitignore`` that keeps it out of git.
Running the command again over the folder keeps the secrets already in its ``.env``.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from slicer_cloud import __version__
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store.atomic import atomic_output

AUTH_CHOICES = ("native", "github", "google", "oidc")
#: Images the compose file names for the services slicer-cloud does not build.
CADDY_IMAGE = "caddy:2.8"
ORTHANC_IMAGE = "orthancteam/orthanc:24.12.1"
#: .env keys generated once and kept when the folder is written again.
SECRET_KEYS = ("JPY_COOKIE_SECRET", "CONFIGPROXY_AUTH_TOKEN", "ORTHANC_PASSWORD")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_MEMORY = re.compile(r"^[1-9][0-9]*(\.[0-9]+)?[KMGT]$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass
class ComposeOptions:
    """The answers. Validated by :meth:`check` before anything is written."""

    out: Path
    domain: str = "localhost"
    auth: str = "native"
    admin: str = "admin"
    email: str | None = None  # for Let's Encrypt's expiry notices
    gpu: bool = False
    cpus_per_user: float = 2.0
    memory_per_user: str = "4G"
    with_pacs: bool = False
    with_dask: bool = False
    dask_workers: int = 2
    idle_timeout_s: int = 3600
    https_port: int = 443
    http_port: int = 80
    bind: str = "0.0.0.0"  # the host address Caddy's ports are published on
    project: str = "slicer-cloud"
    source: Path | None = None  # a slicer-cloud source tree: the compose file builds the images from it
    image: str = field(default_factory=lambda: f"slicer-cloud:{__version__}")
    hub_image: str = field(default_factory=lambda: f"slicer-cloud-hub:{__version__}")
    caddy_image: str = CADDY_IMAGE
    orthanc_image: str = ORTHANC_IMAGE
    oauth_client_id: str = ""
    oauth_client_secret: str = ""
    oidc_issuer: str = ""
    oauth_allowed_users: str = ""

    @property
    def local(self) -> bool:
        return self.domain == "localhost" or self.domain.endswith(".localhost")

    @property
    def base_url(self) -> str:
        port = "" if self.https_port == 443 else f":{self.https_port}"
        return f"https://{self.domain}{port}"

    def check(self) -> None:
        self.domain = self.domain.strip().lower()
        if not _DOMAIN.match(self.domain):
            raise SlicerCloudError(f"--domain {self.domain!r} is not a host name (e.g. slicer.example.org, or localhost to try it).")
        if self.auth not in AUTH_CHOICES:
            raise SlicerCloudError(f"--auth {self.auth!r}: choose one of {', '.join(AUTH_CHOICES)}.")
        if self.auth == "native" and not _NAME.match(self.admin):
            raise SlicerCloudError(f"--admin {self.admin!r}: a user name of lower-case letters, digits, - and _.")
        if not 0.1 <= self.cpus_per_user <= 256:
            raise SlicerCloudError("--cpus-per-user must be between 0.1 and 256.")
        self.memory_per_user = self.memory_per_user.strip().upper()
        if not _MEMORY.match(self.memory_per_user):
            raise SlicerCloudError(f"--memory-per-user {self.memory_per_user!r}: a size such as 4G or 1536M.")
        if not _NAME.match(self.project):
            raise SlicerCloudError(f"--project {self.project!r}: lower-case letters, digits, - and _.")
        for name, port in (("--https-port", self.https_port), ("--http-port", self.http_port)):
            if not 1 <= port <= 65535:
                raise SlicerCloudError(f"{name} {port} is not a port number.")
        try:
            ipaddress.ip_address(self.bind)
        except ValueError:
            raise SlicerCloudError(f"--bind {self.bind!r} is not an IP address (0.0.0.0: every address of the machine).") from None
        if self.idle_timeout_s < 0:
            raise SlicerCloudError("--idle-timeout must be 0 (never) or a number of seconds.")
        if self.auth == "oidc" and not self.oidc_issuer:
            raise SlicerCloudError("--auth oidc needs --oidc-issuer (the provider's issuer URL).")
        if self.source is not None and not (self.source / "deploy" / "docker" / "Dockerfile").is_file():
            raise SlicerCloudError(f"--source {self.source}: no deploy/docker/Dockerfile there (give a slicer-cloud source tree).")


def caddyfile(options: ComposeOptions) -> str:
    lines = ["# Written by `slicer-cloud deploy compose`: HTTPS in front of the hub."]
    if options.email and not options.local:
        lines += ["{", f"\temail {options.email}", "}", ""]
    lines.append(f"{options.domain} {{")
    if options.local:
        lines.append("\t# localhost: certificates from Caddy's own CA (no public certificate exists for it)")
        lines.append("\ttls internal")
    else:
        lines.append("\t# a public certificate from Let's Encrypt, renewed by Caddy (ports 80 and 443 must be reachable)")
    lines += [
        "\tencode gzip",
        "\theader Strict-Transport-Security \"max-age=31536000\"",
        "\treverse_proxy hub:8000",
        "}",
        "",
    ]
    return "\n".join(lines)


def env_values(options: ComposeOptions, previous: dict[str, str]) -> dict[str, str]:
    profiles = [name for name, on in (("pacs", options.with_pacs), ("dask", options.with_dask)) if on]
    values = {
        "COMPOSE_PROJECT_NAME": options.project,
        "COMPOSE_PROFILES": ",".join(profiles),
        "SLICER_CLOUD_DOMAIN": options.domain,
        "HTTPS_PORT": str(options.https_port),
        "HTTP_PORT": str(options.http_port),
        "BIND_ADDRESS": options.bind,
        "SLICER_CLOUD_IMAGE": options.image,
        "SLICER_CLOUD_HUB_IMAGE": options.hub_image,
        "CADDY_IMAGE": options.caddy_image,
        "ORTHANC_IMAGE": options.orthanc_image,
        "DOCKER_SOCKET": "/var/run/docker.sock",
        "SLICER_CLOUD_AUTH": options.auth,
        "SLICER_CLOUD_ADMIN": options.admin,
        "SLICER_CLOUD_CPUS_PER_USER": f"{options.cpus_per_user:g}",
        "SLICER_CLOUD_MEMORY_PER_USER": options.memory_per_user,
        "SLICER_CLOUD_GPU": "1" if options.gpu else "0",
        "SLICER_CLOUD_IDLE_TIMEOUT_S": str(options.idle_timeout_s),
        "DASK_WORKERS": str(options.dask_workers),
        "DASK_WORKER_MEMORY": options.memory_per_user,
        "OAUTH_CLIENT_ID": options.oauth_client_id or previous.get("OAUTH_CLIENT_ID", ""),
        "OAUTH_CLIENT_SECRET": options.oauth_client_secret or previous.get("OAUTH_CLIENT_SECRET", ""),
        "OAUTH_CALLBACK_URL": f"{options.base_url}/hub/oauth_callback",
        "OAUTH_ALLOWED_USERS": options.oauth_allowed_users or previous.get("OAUTH_ALLOWED_USERS", ""),
        "OIDC_ISSUER": options.oidc_issuer,
    }
    for key in SECRET_KEYS:
        values[key] = previous.get(key) or secrets.token_hex(32)
    return values


def read_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
    return values


def env_file(values: dict[str, str]) -> str:
    for key, value in values.items():
        if any(ch in value for ch in "\n\r\"'$#` "):
            raise SlicerCloudError(f"The value for {key} has a character .env cannot hold (a quote, $, # or space).")
    head = [
        "# slicer-cloud deployment: every setting and secret of this folder. Keep it private:",
        "# mode 0600, never committed (.gitignore). Change a value, then `docker compose up -d`.",
    ]
    return "\n".join(head + [f"{key}={value}" for key, value in values.items()]) + "\n"


def override_file(options: ComposeOptions) -> str:
    """Build sections for the two slicer-cloud images, from a source tree: `docker compose up`
    then builds whichever is missing (`docker compose build` rebuilds them)."""
    assert options.source is not None
    source = str(options.source.resolve())
    return f"""# Written by `slicer-cloud deploy compose --source`: builds the slicer-cloud images from {source}.
services:
  hub:
    build:
      context: {source}
      dockerfile: deploy/docker/Dockerfile
      target: hub
  # Builds the image of users' servers (the hub starts those); it exits at once.
  user-image:
    image: ${{SLICER_CLOUD_IMAGE}}
    build:
      context: {source}
      dockerfile: deploy/docker/Dockerfile
      target: singleuser
    command: ["true"]
    restart: "no"
    network_mode: none
"""


def write_text(path: Path, text: str, mode: int = 0o644) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)
        tmp.chmod(mode)


def write_compose(options: ComposeOptions) -> list[Path]:
    """Write (or refresh) the deployment folder; returns the files written."""
    options.check()
    out = options.out
    if out.exists() and not out.is_dir():
        raise SlicerCloudError(f"--out {out} exists and is not a folder.")
    out.mkdir(parents=True, exist_ok=True)
    templates = resources.files("slicer_cloud.deploy").joinpath("templates")
    env_path = out / ".env"
    values = env_values(options, read_env(env_path))
    written = []
    write_text(env_path, env_file(values), mode=0o600)  # secrets: the owner alone reads them
    written.append(env_path)
    files = {
        "docker-compose.yml": templates.joinpath("docker-compose.yml").read_text(),
        "jupyterhub_config.py": templates.joinpath("jupyterhub_config.py").read_text(),
        "Caddyfile": caddyfile(options),
        ".gitignore": "# secrets: never commit them\n.env\n",
    }
    if options.source is not None:
        files["docker-compose.override.yml"] = override_file(options)
    else:
        (out / "docker-compose.override.yml").unlink(missing_ok=True)
    for name, text in files.items():
        write_text(out / name, text)
        written.append(out / name)
    return written


def next_steps(options: ComposeOptions) -> str:
    lines = [f"Wrote a slicer-cloud deployment to {options.out} (settings and secrets in {options.out / '.env'}, mode 0600)."]
    if options.source is None:
        lines.append(f"It runs the images {options.image} and {options.hub_image}: build them first from a source tree "
                     "(docs/deploy.md), or run this again with --source PATH to let compose build them.")
    if options.auth != "native" and not (options.oauth_client_id and options.oauth_client_secret):
        lines.append(f"Fill OAUTH_CLIENT_ID and OAUTH_CLIENT_SECRET in .env (callback URL: {options.base_url}/hub/oauth_callback).")
    lines += ["Next:", f"  cd {options.out}", "  docker compose up -d"]
    if options.auth == "native":
        lines.append(f"Then open {options.base_url}/hub/signup, sign up as '{options.admin}' (the admin), "
                     f"and approve the others at {options.base_url}/hub/authorize.")
    else:
        lines.append(f"Then open {options.base_url}/ and log in.")
    return "\n".join(lines)


# --- cloud-init user-data: the same deployment on a fresh VM ------------------------------------
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
_OPTION = re.compile(r"^--[a-z-]+(=[A-Za-z0-9._:/@,-]+)?$|^[A-Za-z0-9._:/@,-]+$")


def cloud_init(*, domain: str, admin: str, repo: str, ref: str, email: str | None = None, options: list[str] | None = None) -> str:
    """User-data for a fresh Debian/Ubuntu VM that installs Docker, builds the images from
    ``repo`` at ``ref``, writes the deployment (``deploy compose`` with ``options``) and starts it."""
    check = ComposeOptions(out=Path("."), domain=domain, admin=admin)
    check.check()  # the same rules as deploy compose
    if not re.match(r"^(https://|git@)[A-Za-z0-9._:/@~-]+$", repo):
        raise SlicerCloudError(f"--repo {repo!r}: an https:// (or git@) URL of a slicer-cloud repository.")
    if not _REF.match(ref):
        raise SlicerCloudError(f"--ref {ref!r}: a branch or tag name.")
    if email is not None and not re.match(r"^[^@\s\"']+@[^@\s\"']+$", email):
        raise SlicerCloudError(f"--email {email!r} is not an email address.")
    extra = options or []
    for option in extra:
        if not _OPTION.match(option) or option.startswith(("--out", "--domain", "--admin", "--email", "--source")):
            raise SlicerCloudError(f"{option!r} cannot be passed on to deploy compose from here.")
    text = resources.files("slicer_cloud.deploy").joinpath("templates", "cloud-init.yaml").read_text()
    for key, value in {"DOMAIN": check.domain, "ADMIN": admin, "EMAIL": email or "", "REPO": repo, "REF": ref,
                       "OPTIONS": " ".join(extra)}.items():
        text = text.replace(f"@@{key}@@", value)
    return text
