# JupyterHub of a slicer-cloud compose deployment, written by `slicer-cloud deploy compose`.
# It holds no secret and no answer: everything comes from the environment, that is from .env.
import json
import os

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file
env = os.environ
project = env.get("COMPOSE_PROJECT_NAME", "slicer-cloud")

# --- the hub behind Caddy (TLS ends there) ---------------------------------------------------
c.JupyterHub.ip = "0.0.0.0"
c.JupyterHub.port = 8000
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_connect_ip = "hub"  # users' containers reach the hub by its service name
c.JupyterHub.db_url = "sqlite:////srv/jupyterhub/data/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "/srv/jupyterhub/data/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = "/srv/jupyterhub/data/jupyterhub.pid"
c.ConfigurableHTTPProxy.pid_file = "/srv/jupyterhub/data/proxy.pid"
# Caddy sets X-Forwarded-Proto: https; the hub's proxy must pass it on unchanged (rather than add its
# own "http") so that the hub and users' servers see HTTPS and mark their cookies Secure.
c.ConfigurableHTTPProxy.command = ["configurable-http-proxy", "--no-x-forward"]
c.JupyterHub.cookie_options = {"secure": True}

# --- login: one setting, SLICER_CLOUD_AUTH ---------------------------------------------------
auth = env.get("SLICER_CLOUD_AUTH", "native")
admin = env.get("SLICER_CLOUD_ADMIN", "").strip()
c.Authenticator.admin_users = {admin} if admin else set()
if auth == "native":
    # Sign-up at /hub/signup; the admin approves each account at /hub/authorize.
    c.JupyterHub.authenticator_class = "native"
    c.NativeAuthenticator.open_signup = False
    c.NativeAuthenticator.minimum_password_length = 10
    c.NativeAuthenticator.check_common_password = True
    c.NativeAuthenticator.allowed_failed_logins = 5
    c.NativeAuthenticator.seconds_before_next_try = 60
    c.Authenticator.allow_all = True  # NativeAuthenticator's approval is the gate
else:
    classes = {"github": "github", "google": "google", "oidc": "generic-oauth"}
    if auth not in classes:
        raise ValueError(f"SLICER_CLOUD_AUTH={auth!r}: choose native, github, google or oidc")
    c.JupyterHub.authenticator_class = classes[auth]
    c.OAuthenticator.client_id = env["OAUTH_CLIENT_ID"]
    c.OAuthenticator.client_secret = env["OAUTH_CLIENT_SECRET"]
    c.OAuthenticator.oauth_callback_url = env["OAUTH_CALLBACK_URL"]
    allowed = {name.strip() for name in env.get("OAUTH_ALLOWED_USERS", "").split(",") if name.strip()}
    c.OAuthenticator.allowed_users = allowed
    if auth == "github" and env.get("OAUTH_GITHUB_ORGS"):
        c.GitHubOAuthenticator.allowed_organizations = set(env["OAUTH_GITHUB_ORGS"].split(","))
    if auth == "google" and env.get("OAUTH_GOOGLE_DOMAINS"):
        c.GoogleOAuthenticator.hosted_domain = env["OAUTH_GOOGLE_DOMAINS"].split(",")
    if auth == "oidc":
        issuer = env["OIDC_ISSUER"].rstrip("/")
        c.GenericOAuthenticator.authorize_url = env.get("OIDC_AUTHORIZE_URL") or f"{issuer}/protocol/openid-connect/auth"
        c.GenericOAuthenticator.token_url = env.get("OIDC_TOKEN_URL") or f"{issuer}/protocol/openid-connect/token"
        c.GenericOAuthenticator.userdata_url = env.get("OIDC_USERINFO_URL") or f"{issuer}/protocol/openid-connect/userinfo"
        c.GenericOAuthenticator.scope = ["openid", "profile", "email"]
        c.GenericOAuthenticator.username_claim = env.get("OIDC_USERNAME_CLAIM", "preferred_username")
        if env.get("OIDC_ALLOWED_GROUPS"):
            c.GenericOAuthenticator.claim_groups_key = "groups"
            c.GenericOAuthenticator.allowed_groups = set(env["OIDC_ALLOWED_GROUPS"].split(","))

# --- one container per user ------------------------------------------------------------------
c.JupyterHub.spawner_class = "docker"
c.DockerSpawner.image = env["SLICER_CLOUD_IMAGE"]
c.DockerSpawner.network_name = f"{project}-net"
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.prefix = project
c.DockerSpawner.name_template = "{prefix}-user-{username}"
c.DockerSpawner.remove = True  # the container goes when its server stops; the volume stays
c.DockerSpawner.pull_policy = "never" if env.get("SLICER_CLOUD_PULL", "0") == "0" else "ifnotpresent"
c.DockerSpawner.cmd = ["python", "-m", "slicer_cloud.hub.singleuser"]
c.DockerSpawner.notebook_dir = "/home/slicer/work"
c.DockerSpawner.default_url = "/slicer/"
c.DockerSpawner.args = ["--ServerApp.trust_xheaders=True"]  # HTTPS as Caddy saw it (Secure cookies)
volumes = {f"{project}-user-{{username}}": "/home/slicer/work"}
if "dask" in env.get("COMPOSE_PROFILES", "").split(","):
    volumes[f"{project}-dask-shared"] = "/home/slicer/work/shared"
c.DockerSpawner.volumes = volumes
c.DockerSpawner.cpu_limit = float(env.get("SLICER_CLOUD_CPUS_PER_USER", "2"))
c.DockerSpawner.mem_limit = env.get("SLICER_CLOUD_MEMORY_PER_USER", "4G")
c.DockerSpawner.start_timeout = int(env.get("SLICER_CLOUD_START_TIMEOUT_S", "300"))
c.DockerSpawner.http_timeout = int(env.get("SLICER_CLOUD_START_TIMEOUT_S", "300"))
host_config = {"cap_drop": ["ALL"], "security_opt": ["no-new-privileges"], "pids_limit": 1024, "init": True}
if env.get("SLICER_CLOUD_GPU", "0") == "1":
    import docker

    host_config["device_requests"] = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
c.DockerSpawner.extra_host_config = host_config
user_env = {}
if "pacs" in env.get("COMPOSE_PROFILES", "").split(","):
    # the team's PACS, as slicer-cloud's DICOMweb server list (every user shares its account)
    user_env["SLICER_CLOUD_DICOMWEB_SERVERS"] = json.dumps([{
        "name": "pacs", "url": "http://orthanc:8042/dicom-web", "auth": "basic",
        "username": "slicer", "password": env.get("ORTHANC_PASSWORD", ""),
    }])
if "dask" in env.get("COMPOSE_PROFILES", "").split(","):
    user_env["SLICER_CLOUD_ENGINE"] = "dask"
    user_env["SLICER_CLOUD_SCHEDULER"] = "tcp://dask-scheduler:8786"
c.DockerSpawner.environment = user_env

# --- idle servers are stopped (their files stay in the user's volume) ------------------------
idle = int(env.get("SLICER_CLOUD_IDLE_TIMEOUT_S", "3600"))
if idle > 0:
    c.JupyterHub.services = [{
        "name": "idle-culler",
        "command": ["python", "-m", "jupyterhub_idle_culler", f"--timeout={idle}", f"--cull-every={max(30, idle // 10)}"],
    }]
    c.JupyterHub.load_roles = [{
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    }]
