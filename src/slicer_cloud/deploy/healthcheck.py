"""The container image's health check: exit 0 when the server in the container answers.

``SLICER_CLOUD_HEALTH_URL`` names the URL to ask (the hub image sets its own); otherwise it is
the Jupyter Server on port 8888, under the prefix JupyterHub gives a spawned server. Jupyter's
``/api`` answers without a token, so no secret is needed here.
"""

from __future__ import annotations

import os
import sys
import urllib.request

TIMEOUT_S = 8


def health_url(env: dict[str, str] | None = None) -> str:
    env = dict(os.environ if env is None else env)
    if env.get("SLICER_CLOUD_HEALTH_URL"):
        return env["SLICER_CLOUD_HEALTH_URL"]
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    port = env.get("SLICER_CLOUD_HEALTH_PORT", "8888")
    return f"http://127.0.0.1:{port}{prefix.rstrip('/')}/api"


def main() -> int:
    url = health_url()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            ok = 200 <= response.status < 300
    except OSError as error:
        print(f"unhealthy: {url}: {error}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
