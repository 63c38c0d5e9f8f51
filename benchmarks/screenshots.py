"""Refresh the screenshots in docs/img from the current UI, so they never go stale.

Starts ``slicer-cloud serve`` on a temporary data folder holding the built-in sample CT, drives
headless Chromium through each page a guide shows, and writes:

* ``viewer.png``: the web viewer, quad layout, 3D rendering on, on the sample (the README's picture);
* ``jupyter-portal.png``: the portal (``/slicer/``) once its thumbnails have arrived;
* ``jupyter-launcher.png``: JupyterLab's launcher, with a tile for each service;
* ``portal-beside-launcher.png``: the two side by side, to check that they look like one product;
* ``compute-docs.png``: the compute API's OpenAPI page;
* ``desktop.png``: the remote desktop (its fallback program where Slicer is not installed).

Not from here: ``sample-phantom.png`` (a figure of the phantom and ``slicer-cloud inspect``
output) and the survey's figures (``python -m benchmarks.survey``).

Run: ``.venv/bin/python -m benchmarks.screenshots [--out docs/img] [--only viewer,portal]``.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from slicer_cloud.web.serving import free_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
VIEWPORT = {"width": 1280, "height": 800}
SHOTS = ("viewer", "portal", "launcher", "compute", "desktop")
START_TIMEOUT_S = 180


class Serve:
    """``slicer-cloud serve`` on loopback, stopped by its PID."""

    def __init__(self, data: Path, home: Path):
        self.token = secrets.token_urlsafe(16)
        self.port = free_port()
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "SLICER_CLOUD_SPARE_SESSIONS": "0",
        }
        self.log = open(home / "serve.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "slicer_cloud.cli", "serve", "--data", str(data), "--port", str(self.port),
             "--token", self.token, "--no-open"],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=env, cwd=home,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if line.startswith("Serving on "):
                return
        self.stop()
        raise SystemExit(f"slicer-cloud serve did not start; see {home / 'serve.log'}")

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def wait_for_image(page, selector: str, timeout_s: float = 180) -> None:
    page.wait_for_function(
        "sel => { const im = document.querySelector(sel); return !!im && im.complete && im.naturalWidth > 0; }",
        arg=selector, timeout=timeout_s * 1000,
    )  # fmt: skip


def shoot_viewer(context, serve: Serve, out: Path) -> None:
    page = context.new_page()
    page.goto(serve.root + "slicer-viewer/?open=sample-ct.nrrd", timeout=START_TIMEOUT_S * 1000)
    wait_for_image(page, "img.image-display-area")
    page.locator("#sc-vr-switch").check()  # Vuetify gives the switch's input the id
    page.wait_for_timeout(8000)  # the 3D view refines after the first, lighter frame
    page.screenshot(path=str(out / "viewer.png"))
    page.close()


def shoot_portal(context, serve: Serve, out: Path) -> None:
    page = context.new_page()
    page.goto(serve.root + "slicer/", timeout=START_TIMEOUT_S * 1000)
    page.wait_for_selector("body[data-ready=true]", timeout=START_TIMEOUT_S * 1000)
    page.wait_for_function("() => !document.querySelector('.thumb.loading')", timeout=START_TIMEOUT_S * 1000)
    page.wait_for_function("() => document.querySelector('#running-rows tr[data-service]')", timeout=60_000)
    page.screenshot(path=str(out / "jupyter-portal.png"), full_page=True)
    page.close()


def shoot_launcher(context, serve: Serve, out: Path) -> None:
    page = context.new_page()
    page.goto(serve.root + "lab", timeout=START_TIMEOUT_S * 1000)
    page.wait_for_selector(".jp-LauncherCard", timeout=START_TIMEOUT_S * 1000)
    page.wait_for_timeout(2000)  # icons and fonts
    page.screenshot(path=str(out / "jupyter-launcher.png"))
    page.close()


def shoot_compute(context, serve: Serve, out: Path) -> None:
    page = context.new_page()
    page.goto(serve.root + "slicer-api/docs", timeout=START_TIMEOUT_S * 1000)
    page.wait_for_selector(".opblock", timeout=START_TIMEOUT_S * 1000)
    page.screenshot(path=str(out / "compute-docs.png"))
    page.close()


def shoot_desktop(context, serve: Serve, out: Path) -> None:
    page = context.new_page()
    page.goto(serve.root + "slicer-desktop/", timeout=START_TIMEOUT_S * 1000)
    page.wait_for_selector("body[data-state=connected]", timeout=START_TIMEOUT_S * 1000)
    page.wait_for_timeout(6000)  # the programs draw their windows
    page.screenshot(path=str(out / "desktop.png"))
    page.close()


def side_by_side(out: Path) -> None:
    from PIL import Image

    left, right = Image.open(out / "jupyter-portal.png"), Image.open(out / "jupyter-launcher.png")
    height = max(left.height, right.height)
    both = Image.new("RGB", (left.width + right.width + 16, height), "white")
    both.paste(left, (0, 0))
    both.paste(right, (left.width + 16, 0))
    buffer = io.BytesIO()
    both.save(buffer, "PNG", optimize=True)
    (out / "portal-beside-launcher.png").write_bytes(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.screenshots", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--only", default=",".join(SHOTS), help=f"comma-separated, of: {', '.join(SHOTS)}")
    args = parser.parse_args()
    wanted = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(wanted) - set(SHOTS)
    if unknown:
        raise SystemExit(f"unknown screenshots: {', '.join(sorted(unknown))}")
    from playwright.sync_api import sync_playwright

    from slicer_cloud.core.phantom import sample_path

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="slicer-cloud-shots-") as tmp:
        home = Path(tmp)
        data = home / "data"
        data.mkdir()
        shutil.copyfile(sample_path(), data / "sample-ct.nrrd")
        serve = Serve(data, home)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                context = browser.new_context(viewport=VIEWPORT)
                login = context.new_page()  # the token once; Jupyter's cookie afterwards
                login.goto(serve.root + f"slicer/?token={serve.token}", timeout=START_TIMEOUT_S * 1000)
                login.close()
                shooters = {"viewer": shoot_viewer, "portal": shoot_portal, "launcher": shoot_launcher,
                            "compute": shoot_compute, "desktop": shoot_desktop}  # fmt: skip
                for name in wanted:
                    started = time.monotonic()
                    shooters[name](context, serve, args.out)
                    print(f"{name}: {time.monotonic() - started:.0f} s", flush=True)
                if {"portal", "launcher"} <= set(wanted):
                    side_by_side(args.out)
                browser.close()
        finally:
            serve.stop()
    print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
