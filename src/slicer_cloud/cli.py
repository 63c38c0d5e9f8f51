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
    typer.Option(
        help="Access token. Omitted: SLICER_CLOUD_TOKEN (safer: a command line is readable by every local user), "
        "else one is generated and printed. '' disables it (loopback only)."
    ),
]
BaseUrlOpt = Annotated[str, typer.Option("--base-url", help="URL prefix when served behind a proxy, e.g. /viewer/.")]
OpenOpt = Annotated[bool, typer.Option("--open/--no-open", help="Open the URL in a web browser.")]
DataOpt = Annotated[
    Optional[Path], typer.Option("--data", help="Data folder: what the viewer lists and where it saves. Default: .")
]
LogLevelOpt = Annotated[
    Optional[str],
    typer.Option("--log-level", help="debug, info, warning or error. Default: SLICER_CLOUD_LOG_LEVEL, else info."),
]


@app.callback()
def _root(
    pacs: Annotated[
        Optional[list[str]],
        typer.Option("--pacs", help="A DICOMweb server for every command: NAME=URL, or name=N,url=U,auth=basic|bearer,"
                     "username=U,password_file=F / token_file=F (repeatable; docs/dicomweb.md)."),
    ] = None,
) -> None:
    """3D Slicer over an internet connection: web viewer, compute API, remote desktop, Jupyter."""
    if pacs:
        from slicer_cloud.dicomweb.settings import export_servers, parse_server_spec

        try:
            export_servers([parse_server_spec(spec) for spec in pacs])
        except SlicerCloudError as error:
            _fail(error)


def _fail(error: SlicerCloudError) -> None:
    typer.secho(f"error: {error.message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=2)


def _log_level(level: str | None) -> None:
    """An explicit --log-level becomes the setting, so the processes a service starts follow it."""
    from slicer_cloud.logs import use_level

    try:
        use_level(level)
    except SlicerCloudError as error:
        _fail(error)


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
    log_level: LogLevelOpt = None,
) -> None:
    """Serve Slicer's viewer to the browser. With no PATH and no --data, opens a built-in sample."""
    from slicer_cloud.viewer.service import run_viewer

    _log_level(log_level)
    try:
        run_viewer(paths=paths or [], data=data, host=host, port=port, token=token, base_url=base_url, open_browser=open_browser)
    except SlicerCloudError as error:
        _fail(error)


# --- remote desktop (issue #4) ----------------------------------------------------------------
class _DesktopGroup(typer.core.TyperGroup):
    """`desktop [OPTIONS] [-- SLICER_ARGS...]` runs the desktop; `desktop install-slicer` is a
    subcommand. Everything after `--` is kept for Slicer instead of being read as a subcommand."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        if "--" in args and not (args and args[0] in self.commands):
            split = args.index("--")
            ctx.meta["slicer_args"] = args[split + 1 :]
            args = args[:split]
        return super().parse_args(ctx, args)


desktop_app = typer.Typer(
    cls=_DesktopGroup, invoke_without_command=True, add_completion=False, subcommand_metavar="[-- SLICER_ARGS...] | install-slicer"
)
app.add_typer(desktop_app, name="desktop")


@desktop_app.callback()
def desktop(
    ctx: typer.Context,
    host: Annotated[Optional[str], typer.Option(help="Address to listen on (default 127.0.0.1). Anything but loopback requires a token.")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default 6080; 0: any free port).")] = None,
    token: TokenOpt = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="URL prefix when served behind a proxy, e.g. /desktop/.")] = None,
    geometry: Annotated[Optional[str], typer.Option(help="Initial screen size, e.g. 1600x900; the page then fits it to the browser window.")] = None,
    slicer: Annotated[Optional[Path], typer.Option(help="The Slicer executable. Default: SLICER_EXECUTABLE, Slicer on PATH, or one from install-slicer.")] = None,
    app_command: Annotated[Optional[str], typer.Option("--app", help="Run this command instead of Slicer, e.g. --app 'xterm -fa Mono'.")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="The desktop's working folder: Slicer's file dialogs open there. Default: .")] = None,
    open_browser: OpenOpt = False,
    gpu: Annotated[bool, typer.Option("--gpu", help="Render with the GPU: VirtualGL's vglrun where installed, else EGL (untested).")] = False,
    log_level: LogLevelOpt = None,
    allow_tcp_vnc: Annotated[bool, typer.Option("--allow-tcp-vnc", help="Xvnc older than TigerVNC 1.10: serve VNC on a loopback port behind a password only this service knows (else: refused).")] = False,
    transport: Annotated[Optional[str], typer.Option("--transport", help="novnc (default) or selkies (H.264/JPEG decoded by the browser; needs the selkies package).")] = None,
) -> None:
    """The full Slicer desktop in a browser tab (Xvnc + noVNC). Arguments after -- go to Slicer."""
    _log_level(log_level)
    if ctx.invoked_subcommand is not None:
        return
    from slicer_cloud.desktop.service import run_desktop

    try:
        run_desktop(
            host=host, port=port, token=token, base_url=base_url, geometry=geometry, slicer=slicer, app=app_command,
            data=data, open_browser=open_browser, gpu=gpu, slicer_args=list(ctx.meta.get("slicer_args", [])),
            allow_tcp_vnc=allow_tcp_vnc or None, transport=transport,
        )  # fmt: skip
    except SlicerCloudError as error:
        _fail(error)


@desktop_app.command("install-slicer")
def desktop_install_slicer(
    version: Annotated[Optional[str], typer.Option(help="Release to install, e.g. 5.8.1. Default: the latest.")] = None,
    dest: Annotated[Optional[Path], typer.Option(help="Folder to install into. Default: the slicer-cloud cache.")] = None,
) -> None:
    """Download an official Slicer release for Linux, verify its checksum, and cache it."""
    from slicer_cloud.desktop.install import install_slicer

    try:
        executable = install_slicer(version=version, dest=dest)
    except SlicerCloudError as error:
        _fail(error)
    typer.echo(f"Slicer is installed: {executable}")


# --- image files and the built-in sample (core) -----------------------------------------------
@app.command("inspect")
def inspect_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Image files (NRRD, NIfTI, MetaImage, DICOM) or DICOM folders.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line instead of text.")] = False,
) -> None:
    """Check images from their headers (size limits, truncation, bombs) and print their geometry."""
    import json

    from slicer_cloud.core.images import inspect_image

    failed = False
    for path in paths:
        try:
            info = inspect_image(path)
        except SlicerCloudError as error:
            typer.secho(f"error: {error.message}", err=True, fg=typer.colors.RED)
            failed = True
            continue
        typer.echo(json.dumps(info.as_dict()) if as_json else info.summary())
    if failed:
        raise typer.Exit(code=2)


@app.command()
def sample(
    dicom: Annotated[Optional[Path], typer.Option("--dicom", help="Also write the sample as a DICOM series into this folder.")] = None,
) -> None:
    """Print the path of the built-in sample CT (a phantom NRRD), generating it on first use."""
    from slicer_cloud.core.phantom import make_phantom, sample_path, write_dicom_series

    typer.echo(sample_path())
    if dicom is not None:
        files = write_dicom_series(dicom, make_phantom())
        typer.echo(f"{len(files)} DICOM files in {dicom}")


# --- headless compute API and batch runs (issue #3) -----------------------------------------
EngineOpt = Annotated[str, typer.Option("--engine", help="Where jobs run: local (a pool of processes), dask, or slurm (Dask workers as SLURM jobs, settings SLICER_CLOUD_SLURM_*).")]
SchedulerOpt = Annotated[
    Optional[str], typer.Option("--scheduler", help="Dask scheduler address (tls://host:8786 with the SLICER_CLOUD_DASK_TLS_* files). Omitted: a LocalCluster with TLS made for this run.")
]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", min=1, help="Jobs at once (local), LocalCluster workers (dask) or most SLURM worker jobs (slurm). Default: cores.")]
ModulesPathOpt = Annotated[
    Optional[list[Path]], typer.Option("--modules-path", help="A folder of CLI module executables that answer --xml (repeatable).")
]


@app.command()
def api(
    data: Annotated[Optional[Path], typer.Option("--data", help="Data folder: items, jobs and paths clients may name. Default: .")] = None,
    host: HostOpt = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8000,
    token: TokenOpt = None,
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    modules_path: ModulesPathOpt = None,
    log_level: LogLevelOpt = None,
) -> None:
    """Serve the headless compute REST API (OpenAPI page at /docs): upload scans, run CLI modules as jobs."""
    from slicer_cloud.compute.server import run_api

    _log_level(log_level)
    try:
        run_api(data=data, host=host, port=port, token=token, engine=engine, scheduler=scheduler, workers=workers,
                modules_path=modules_path or [])
    except SlicerCloudError as error:
        _fail(error)


@app.command("run")
def run_cmd(
    module: Annotated[str, typer.Argument(help="Module name, e.g. threshold (slicer-cloud run --list shows them).")] = "",
    inputs: Annotated[Optional[list[str]], typer.Argument(help="Input files, folders, globs or DICOMweb series (dicomweb:SERVER/STUDY[/SERIES], dicomweb:SERVER?Modality=CT&...): one case each.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="A parameter as NAME=VALUE (repeatable); {stem} in output names.")] = None,
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for the outputs and summary.csv.")] = Path("slicer-cloud-results"),
    modules_path: ModulesPathOpt = None,
    list_modules: Annotated[bool, typer.Option("--list", help="List the modules and exit.")] = False,
    to_pacs: Annotated[bool, typer.Option("--to-pacs", help="Inputs from DICOMweb (dicomweb:...): store label map outputs back as DICOM SEG.")] = False,
) -> None:
    """Run one module over many inputs, with a progress bar and a summary; failed cases do not stop the batch."""
    from slicer_cloud.compute.batch import run_batch

    try:
        if list_modules or not module:
            from slicer_cloud.compute.modules.registry import Registry

            for entry in Registry(modules_path or []).entries():
                typer.echo(f"{entry.name:22} {entry.descriptor.title} ({entry.descriptor.category})")
            return
        cases = run_batch(module, inputs or [], sets=set_ or [], out=out, engine=engine, scheduler=scheduler,
                          workers=workers, modules_path=modules_path or [], to_pacs=to_pacs)
    except SlicerCloudError as error:
        _fail(error)
    if any(case.state != "succeeded" for case in cases):
        raise typer.Exit(code=1)


# --- Jupyter: the all-in-one server and the hub (issue #5) ------------------------------------
@app.command()
def serve(
    data: Annotated[Optional[Path], typer.Option("--data", help="Data folder (also the notebooks' folder). Default: a sample data folder.")] = None,
    ip: Annotated[str, typer.Option("--ip", help="Address to listen on. Anything but loopback requires a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8888,
    token: TokenOpt = None,
    open_browser: OpenOpt = False,
    log_level: LogLevelOpt = None,
) -> None:
    """Everything behind one URL and one login: a Jupyter Server with the portal, the viewer, the desktop and the API."""
    from slicer_cloud.jupyter.serve import run_serve

    _log_level(log_level)
    try:
        run_serve(data=data, ip=ip, port=port, token=token, open_browser=open_browser)
    except SlicerCloudError as error:
        _fail(error)


@app.command()
def hub(
    ip: Annotated[str, typer.Option("--ip", help="Address the hub listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the hub's public proxy.")] = 8000,
    config: Annotated[Optional[Path], typer.Option("--config", help="A jupyterhub_config.py applied after the defaults (authenticator, spawner, limits).")] = None,
    state: Annotated[Optional[Path], typer.Option("--state", help="Folder for the hub's database, cookie secret and PID files. Default: ./slicer-cloud-hub.")] = None,
    log_level: LogLevelOpt = None,
) -> None:
    """Many users: JupyterHub spawning one slicer-cloud server per user, idle ones culled."""
    from slicer_cloud.hub.service import run_hub

    _log_level(log_level)
    try:
        run_hub(ip=ip, port=port, config=config, state_dir=state)
    except SlicerCloudError as error:
        _fail(error)


# --- the forum survey (issue #14) --------------------------------------------------------------
@app.command()
def survey(
    out: Annotated[Path, typer.Option("--out", help="Folder for topics.csv, report.html and plots/.")],
    archive: Annotated[Optional[Path], typer.Option("--archive", help="An archive of topics: one /t/{id}.json object per line (.jsonl or .jsonl.gz).")] = None,
    forum: Annotated[Optional[str], typer.Option("--forum", help="Survey this live Discourse forum instead, e.g. https://discourse.slicer.org.")] = None,
    cache: Annotated[Optional[Path], typer.Option("--cache", help="Cache folder of a live survey (a re-run fetches only what changed).")] = None,
    max_pages: Annotated[Optional[int], typer.Option("--max-pages", min=1, help="Live: most /latest.json pages read (default: all).")] = None,
    max_fetches: Annotated[Optional[int], typer.Option("--max-fetches", min=0, help="Live: most topics fetched in this run (default: all needed).")] = None,
    link_base: Annotated[Optional[str], typer.Option("--link-base", help="Archive: the forum its topics link to. Default: SLICER_CLOUD_SURVEY_FORUM_URL.")] = None,
) -> None:
    """What the forum asks about using Slicer remotely: each topic sorted into an approach, with its evidence."""
    from slicer_cloud.survey.service import survey_archive, survey_forum

    if (archive is None) == (forum is None):
        _fail(SlicerCloudError("Give exactly one of --archive FILE or --forum URL."))
    try:
        if archive is not None:
            run = survey_archive(archive, out, base_url=link_base)
        else:
            run = survey_forum(forum, out, cache_dir=cache, max_latest_pages=max_pages, max_topic_fetches=max_fetches,
                               progress=lambda message: typer.echo(message, err=True))
    except SlicerCloudError as error:
        _fail(error)
    counts = run.survey.counts()
    typer.echo(f"{run.survey.total} topics, {len(run.survey.remote)} about remote use: "
               + ", ".join(f"{approach} {counts[approach]}" for approach in ("remote_desktop", "headless_compute_node", "jupyter_kernel", "pure_web")))
    if run.sync_summary:
        typer.echo(f"forum: {run.sync_summary}")
    for key in ("csv", "html"):
        typer.echo(f"wrote {run.files[key]}")
    typer.echo(f"done in {run.elapsed_s:.0f} s")

# --- deployments for a team (issue #10) ------------------------------------------------------
deploy_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Write ready-made deployments: docker compose (more to come).")
app.add_typer(deploy_app, name="deploy")


@deploy_app.command("compose")
def deploy_compose(
    out: Annotated[Path, typer.Option("--out", help="The deployment folder to write (or refresh: its secrets are kept).")] = Path("slicer-cloud-deploy"),
    domain: Annotated[str, typer.Option(help="The host name users open; localhost to try it (Caddy's internal CA).")] = "localhost",
    auth: Annotated[str, typer.Option(help="Login: native (sign-up, admin approval), github, google or oidc.")] = "native",
    admin: Annotated[str, typer.Option(help="The admin's user name (approves sign-ups with --auth native).")] = "admin",
    email: Annotated[Optional[str], typer.Option(help="Email for Let's Encrypt's notices (a real domain).")] = None,
    gpu: Annotated[bool, typer.Option("--gpu", help="Give users' containers the NVIDIA GPUs (needs the NVIDIA container toolkit).")] = False,
    cpus_per_user: Annotated[float, typer.Option(help="CPU limit of each user's container.")] = 2.0,
    memory_per_user: Annotated[str, typer.Option(help="Memory limit of each user's container, e.g. 4G.")] = "4G",
    with_pacs: Annotated[bool, typer.Option("--with-pacs", help="Add Orthanc with DICOMweb, a PACS for the team.")] = False,
    with_dask: Annotated[bool, typer.Option("--with-dask", help="Add a Dask scheduler and workers for the compute API.")] = False,
    idle_timeout: Annotated[int, typer.Option(help="Stop a user's server after this many idle seconds (0: never).")] = 3600,
    https_port: Annotated[int, typer.Option(help="Host port for HTTPS.")] = 443,
    http_port: Annotated[int, typer.Option(help="Host port for HTTP (certificate challenges, redirects).")] = 80,
    bind: Annotated[str, typer.Option(help="Host address the ports are published on (127.0.0.1: this machine only).")] = "0.0.0.0",
    project: Annotated[str, typer.Option(help="Compose project name: prefixes containers, volumes and the network.")] = "slicer-cloud",
    source: Annotated[Optional[Path], typer.Option(help="A slicer-cloud source tree: compose builds the images from it.")] = None,
    oauth_client_id: Annotated[str, typer.Option(help="OAuth client ID (github, google, oidc).")] = "",
    oidc_issuer: Annotated[str, typer.Option(help="OIDC issuer URL (--auth oidc).")] = "",
    allowed_users: Annotated[str, typer.Option(help="OAuth: user names allowed in, comma-separated.")] = "",
) -> None:
    """A folder for `docker compose up`: Caddy (HTTPS), JupyterHub and one container per user.
    Secrets are generated into its .env (mode 0600); the OAuth client secret is read from
    OAUTH_CLIENT_SECRET in the environment, never from the command line."""
    import os

    from slicer_cloud.deploy.compose import ComposeOptions, next_steps, write_compose

    options = ComposeOptions(
        out=out, domain=domain, auth=auth, admin=admin, email=email, gpu=gpu, cpus_per_user=cpus_per_user,
        memory_per_user=memory_per_user, with_pacs=with_pacs, with_dask=with_dask, idle_timeout_s=idle_timeout,
        https_port=https_port, http_port=http_port, bind=bind, project=project, source=source, oauth_client_id=oauth_client_id,
        oauth_client_secret=os.environ.get("OAUTH_CLIENT_SECRET", ""), oidc_issuer=oidc_issuer, oauth_allowed_users=allowed_users,
    )  # fmt: skip
    try:
        write_compose(options)
    except SlicerCloudError as error:
        _fail(error)
    typer.echo(next_steps(options))


@deploy_app.command("cloud-init")
def deploy_cloud_init(
    domain: Annotated[str, typer.Option(help="The VM's DNS name (its A record must point at the VM).")],
    repo: Annotated[str, typer.Option(help="The slicer-cloud git repository the VM builds the images from.")],
    ref: Annotated[str, typer.Option(help="The branch or tag to build.")] = "main",
    admin: Annotated[str, typer.Option(help="The admin's user name.")] = "admin",
    email: Annotated[Optional[str], typer.Option(help="Email for Let's Encrypt's notices.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the user-data here instead of printing it.")] = None,
    options: Annotated[Optional[list[str]], typer.Argument(help="More deploy compose options, after --, e.g. -- --with-pacs --memory-per-user=8G")] = None,
) -> None:
    """User-data for a fresh Debian/Ubuntu VM: installs Docker, builds the images, writes the
    compose deployment and starts it (docs/deploy.md has the command for each cloud)."""
    from slicer_cloud.deploy.compose import cloud_init
    from slicer_cloud.store.atomic import atomic_output

    try:
        text = cloud_init(domain=domain, admin=admin, repo=repo, ref=ref, email=email, options=options or [])
    except SlicerCloudError as error:
        _fail(error)
    if out is None:
        typer.echo(text, nl=False)
        return
    with atomic_output(out) as tmp:
        tmp.write_text(text)
    typer.echo(f"Wrote {out}: pass it as the VM's user-data (docs/deploy.md).")


# --- self-check (issue: the first five minutes) -----------------------------------------------
@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object (checks, and which ways to work are ready) for scripts.")] = False,
) -> None:
    """Check what each way to work needs on this machine: what works, what is missing, the command that fixes it."""
    from slicer_cloud.doctor import run_doctor

    if not run_doctor(as_json=as_json):
        raise typer.Exit(code=1)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
