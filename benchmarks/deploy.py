"""The compose deployment measured: image size, `docker compose up` to the login page, a user's
login to the first viewer image (container cold and warm), memory per idle and per active user.

    python -m benchmarks.deploy

It builds the images the way the tests do (tests/deploy/images.py: no registry, a Debian base
made by debootstrap), brings a deployment up on loopback, drives Chromium through Caddy over
HTTPS, and writes its tables into docs/benchmarks.md.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.report import machine_line, markdown_table, write_section
from tests.deploy import images
from tests.deploy.deployment import log_in, open_sample_in_viewer, sign_up, start_deployment

MiB = 1024**2
IMG = Path(__file__).resolve().parents[1] / "docs" / "img"


def compressed_size(tag: str) -> int:
    """Bytes of `docker save` through gzip -6 (what a registry's layers weigh, about)."""
    save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
    gzip = subprocess.Popen(["nice", "-n", "10", "gzip", "-6", "-c"], stdin=save.stdout, stdout=subprocess.PIPE)
    save.stdout.close()
    total = 0
    while chunk := gzip.stdout.read(1 << 20):
        total += len(chunk)
    gzip.wait()
    save.wait()
    return total


def disk_size(tag: str) -> int:
    return int(images.docker("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())


def container_memory(container) -> int:
    """Memory charged to the container minus its reclaimable page cache (as `docker stats`)."""
    stats = container.stats(stream=False)["memory_stats"]
    inactive = stats.get("stats", {}).get("inactive_file", stats.get("stats", {}).get("total_inactive_file", 0))
    return stats["usage"] - inactive


def timed_login_to_image(browser, base: str, user: str) -> float:
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    start = time.monotonic()
    log_in(page, base, user)
    open_sample_in_viewer(page)
    elapsed = time.monotonic() - start
    context.close()
    return elapsed


def approve(browser, base: str, user: str) -> None:
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    log_in(page, base, "admin")
    page.goto(f"{base}/hub/authorize")
    page.set_viewport_size({"width": 1100, "height": 600})
    page.screenshot(path=str(IMG / "deploy-authorize.png"))
    page.locator(f"a[href$='authorize/{user}']").click()
    page.wait_for_load_state()
    context.close()


def main() -> None:
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM, CHROMIUM_ARGS

    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reuse-images", action="store_true", help="measure the tagged images as they are (no build, no hash check)")
    parser.add_argument("--no-compressed", action="store_true", help="skip the compressed sizes (docker save | gzip takes minutes)")
    options = parser.parse_args()
    images.ensure_engine()
    build_start = time.monotonic()
    version = images.project_version()
    user_tag, hub_tag = (f"slicer-cloud:{version}", f"slicer-cloud-hub:{version}") if options.reuse_images else images.slicer_cloud_images()
    build_s = time.monotonic() - build_start
    sizes = [(tag, disk_size(tag), None if options.no_compressed else compressed_size(tag)) for tag in (user_tag, hub_tag)]
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        deployment = start_deployment(Path(tmp), cpus="2", memory="4G", build=not options.reuse_images)
        try:
            first_up = deployment.up()
            context = browser.new_context(ignore_https_errors=True, viewport={"width": 1100, "height": 700})
            shot = context.new_page()
            shot.goto(f"{deployment.base}/hub/signup")
            shot.screenshot(path=str(IMG / "deploy-signup.png"))
            for user in ("admin", "student"):
                sign_up(context.new_page(), deployment.base, user)
            context.close()
            cold = timed_login_to_image(browser, deployment.base, "admin")
            active = container_memory(deployment.user_containers()["admin"])
            warm = timed_login_to_image(browser, deployment.base, "admin")
            approve(browser, deployment.base, "student")
            context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
            portal = context.new_page()
            log_in(portal, deployment.base, "student")
            time.sleep(15)  # let the fresh server settle before reading its memory
            idle = container_memory(deployment.user_containers()["student"])
            portal.screenshot(path=str(IMG / "deploy-portal.png"))
            context.close()
            hub_mem = sum(container_memory(c) for c in deployment.engine().containers.list()
                          if c.labels.get("com.docker.compose.project") == deployment.project)
            deployment.compose("down", "--timeout", "60")
            second_up = deployment.up()
        finally:
            deployment.remove_everything()
        browser.close()

    body = "\n\n".join([
        "## Compose deployment (`python -m benchmarks.deploy`)",
        machine_line(),
        "The images as built by the tests (Debian bookworm base from debootstrap, wheels from the lock file); "
        "compressed = `docker save` through `gzip -6`, about what a registry stores:",
        markdown_table(["image", "on disk (MiB)", "compressed (MiB)"],
                       [[tag, f"{disk / MiB:.0f}", "not measured" if packed is None else f"{packed / MiB:.0f}"] for tag, disk, packed in sizes]),
        ("The images were measured as tagged (not rebuilt for this run). " if options.reuse_images else
         f"Building both images took {build_s:.0f} s in this run (0 when cached by the hash of their inputs). ")
        + "A cold build on this 2-core machine, shared with other work, took about 15 minutes.",
        "The deployment for localhost (Caddy with its internal CA, the hub, one container per user with "
        "2 CPUs and 4 GiB), driven by Chromium over HTTPS:",
        markdown_table(["what", "seconds"], [
            ["`docker-compose up -d` to the login page, fresh volumes", f"{first_up:.1f}"],
            ["`docker-compose up -d` to the login page after `down`", f"{second_up:.1f}"],
            ["login to the first viewer image, user's container cold (spawned by the login)", f"{cold:.1f}"],
            ["login to the first viewer image, user's container running", f"{warm:.1f}"],
        ]),
        "Memory (`docker stats`' figure: usage less reclaimable page cache):",
        markdown_table(["what", "MiB"], [
            ["a user's container, idle (portal open, no viewer yet)", f"{idle / MiB:.0f}"],
            ["a user's container, active (viewer session on the sample, one spare session)", f"{active / MiB:.0f}"],
            ["Caddy + hub (with its proxy and idle culler)", f"{hub_mem / MiB:.0f}"],
        ]),
        "Beside them: SlicerDocker's `slicer/slicer-notebook` and SlicerDockers' desktop images carry a whole "
        "Slicer desktop build with Qt and an X server; we found no size they publish, so none is quoted here.",
    ])
    write_section("deploy", body)
    print(body)


if __name__ == "__main__":
    main()
