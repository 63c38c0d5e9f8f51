"""The ``slicer-cloud`` command. Each subcommand only parses its options and calls a service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from slicer_cloud.errors import SlicerCloudError

app = typer.Typer(
    name="slicer-cloud",
    help="3D Slicer over an internet connection: web viewer, compute API, remote desktop, Jupyter.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

HostOpt = Annotated[str, typer.Option(help="Address to listen on. Anything but loopback requires a token.")]
TokenOpt = Annotated[
    Optional[str],
    typer.Option(help="Access token. Omitted: one is generated and printed. '' disables it (loopback only)."),
]
BaseUrlOpt = Annotated[str, typer.Option("--base-url", help="URL prefix when served behind a proxy, e.g. /viewer/.")]
OpenOpt = Annotated[bool, typer.Option("--open/--no-open", help="Open the URL in a web browser.")]
DataOpt = Annotated[
    Optional[Path], typer.Option("--data", help="Data folder: what the viewer lists and where it saves. Default: .")
]


def _fail(error: SlicerCloudError) -> None:
    typer.secho(f"error: {error.message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=2)


# --- web viewer (issue: pure web) -------------------------------------------------------------
@app.command()
def view(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Files or DICOM folders to open.")] = None,
    data: DataOpt = None,
    host: HostOpt = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8080,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = "/",
    open_browser: OpenOpt = False,
) -> None:
    """Serve Slicer's viewer to the browser. With no PATH and no --data, opens a built-in sample."""
    from slicer_cloud.viewer.service import run_viewer

    try:
        run_viewer(paths=paths or [], data=data, host=host, port=port, token=token, base_url=base_url, open_browser=open_browser)
    except SlicerCloudError as error:
        _fail(error)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
