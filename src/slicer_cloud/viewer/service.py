"""``slicer-cloud view``: resolve the options, then run the gateway."""

from __future__ import annotations

from pathlib import Path

from slicer_cloud.config import Limits, ViewerSettings
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.logs import setup_logging
from slicer_cloud.security import resolve_token
from slicer_cloud.web.serving import normalize_base_url, serve_app


def run_viewer(
    *,
    paths: list[Path],
    data: Path | None,
    host: str,
    port: int,
    token: str | None,
    base_url: str,
    open_browser: bool,
    settings: ViewerSettings | None = None,
    show_token: bool = True,
) -> None:
    from slicer_cloud.viewer.gateway import build_app
    from slicer_cloud.viewer.sessions import OpenItem, OpenRequest

    setup_logging()
    settings = settings or ViewerSettings()
    # --token wins; else SLICER_CLOUD_TOKEN (through the settings): a command line is readable
    # by every local user in /proc, the environment is not.
    token = resolve_token(host, token if token is not None else settings.token)
    base = normalize_base_url(base_url)
    overrides: dict = {"host": host, "port": port, "token": token, "base_url": base}
    if data is not None:
        if not data.is_dir():
            raise SlicerCloudError(f"--data {data} is not a folder.")
        overrides["data_dir"] = data.resolve()
    settings = settings.model_copy(update=overrides)
    limits = Limits()

    for path in paths:
        if not path.exists():
            raise SlicerCloudError(f"{path} does not exist.")
    default_open = None
    if paths:
        items = tuple(OpenItem(path=str(p.resolve()), trusted=True, label=p.name) for p in paths)
        default_open = OpenRequest(items)
    elif data is None:
        from slicer_cloud.core.phantom import sample_path

        sample = sample_path(settings.cache_dir / "samples")
        default_open = OpenRequest((OpenItem(path=str(sample), trusted=True, label="Sample CT (synthetic phantom)"),))

    serve_app(
        lambda actual_port: build_app(settings, limits, token=token, port=actual_port, default_open=default_open),
        host=host,
        port=port,
        base=base,
        token=token,
        open_browser=open_browser,
        show_token=show_token,
    )
