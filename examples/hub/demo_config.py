# A hub for a demo or a trusted class, without accounts on the machine:
#
#     SLICER_CLOUD_HUB_DEMO_PASSWORD=choose-a-long-one slicer-cloud hub --config examples/hub/demo_config.py
#
# Anyone with the shared password logs in under any name they choose (list names in
# c.Authenticator.allowed_users instead to restrict it). Every user's slicer-cloud server runs as
# the hub's own account in its own folder: the hub keeps users' pages, services and websockets
# apart, but notebook code runs as the hub's account and could read another user's files and the
# hub's own secrets (and so act as any user). Only for people you trust. See docs/hub.md.
import os
import secrets

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

password = os.environ.get("SLICER_CLOUD_HUB_DEMO_PASSWORD") or secrets.token_urlsafe(12)
if "SLICER_CLOUD_HUB_DEMO_PASSWORD" not in os.environ:
    print(f"Demo password (set SLICER_CLOUD_HUB_DEMO_PASSWORD to choose one): {password}", flush=True)

c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = password
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "slicer_cloud.hub.spawners.SlicerCloudDemoSpawner"
# Each user's folder (their data and notebooks) is SLICER_CLOUD_HUB_USERS_DIR/NAME, by default
# STATE-users/NAME beside the hub's --state folder (never inside it).
